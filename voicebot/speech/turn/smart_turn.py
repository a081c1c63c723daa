"""Smart Turn v3.2 (Daily, BSD-2-Clause): an end-of-turn classifier on the last 8 s of audio.

The CPU model is an int8 ONNX file (about 8.7 MB) fetched by ``scripts/fetch-smart-turn.py``
into ``models/smart-turn/``. Its input is ``input_features`` float32 [batch, 80, 800] (see
``features.py``); its output ``logits`` [batch, 1] is already a sigmoid, P(turn complete).

One inference costs about 110 ms on one core; a call's verdict is three of them, one batch
(``base.END_JITTER_S``). Every model call runs on the single worker thread the detector owns,
so concurrent calls queue rather than fight over the same cores, and the event loop never
blocks. On pure silence the model says "complete" (0.99): it is meant only
for audio that contains speech.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...config import DEFAULT_MODELS_DIR
from ...errors import ModelError
from ..workers import Worker, worker_status
from .base import TurnDetector
from .features import FEATURE_SHAPE, WINDOW_SAMPLES, turn_features

log = logging.getLogger(__name__)

MODEL_FILENAME = "smart-turn-v3.2-cpu.onnx"
MODEL_SUBDIR = "smart-turn"
INPUT_NAME = "input_features"
OUTPUT_NAME = "logits"
# pipecat's threshold for "complete"; callers may choose their own.
COMPLETE_THRESHOLD = 0.5

_FETCH_HINT = "run .venv/bin/python scripts/fetch-smart-turn.py"
# voicebot/speech/turn/smart_turn.py -> the repository (in an editable install / checkout).
_REPO = Path(__file__).resolve().parents[3]


def find_smart_turn_model(models_dir: Path = DEFAULT_MODELS_DIR) -> Path | None:
    """``<models_dir>/smart-turn/smart-turn-v3.2-cpu.onnx``, else the same file under the
    repository's ``models/``, or None when neither exists."""
    candidates = [models_dir / MODEL_SUBDIR / MODEL_FILENAME]
    repo_model = _REPO / "models" / MODEL_SUBDIR / MODEL_FILENAME
    if repo_model not in candidates:
        candidates.append(repo_model)
    for path in candidates:
        if path.is_file():
            return path
    return None


class SmartTurnDetector(TurnDetector):
    name = "smart-turn-v3.2"

    def __init__(self, model_path: Path) -> None:
        self._path = Path(model_path)
        self._session: Any = None
        self._executor: Worker | None = None

    @property
    def model_path(self) -> Path:
        return self._path

    async def load(self) -> None:
        if self._session is not None:
            return
        path = self._path.expanduser()
        if not path.is_file():
            raise ModelError(f"Smart Turn model not found: {path} ({_FETCH_HINT})")
        self._executor = Worker(1, "smart-turn")
        loop = asyncio.get_running_loop()
        try:
            session = await loop.run_in_executor(self._executor, _open_session, path)
            # The first run pays for lazy allocations; pay it now, not on the first caller.
            # It also checks that the model answers with one probability per input.
            silence = np.zeros((1, *FEATURE_SHAPE), dtype=np.float32)
            await loop.run_in_executor(self._executor, _run, session, silence)
        except ModelError:
            await self.close()
            raise
        except Exception as exc:
            await self.close()
            raise ModelError(f"cannot load Smart Turn model {path}: {exc} ({_FETCH_HINT})") from exc
        self._session = session
        log.info("smart-turn model loaded from %s", path)

    async def probabilities_complete(self, turns: Sequence[np.ndarray]) -> list[float]:
        for pcm in turns:
            if pcm.ndim != 1 or pcm.dtype != np.int16:
                raise ValueError(
                    f"expected mono int16 samples, got {pcm.dtype} with shape {pcm.shape}"
                )
        session, executor = self._session, self._executor
        if session is None or executor is None:
            raise RuntimeError("SmartTurnDetector is not loaded (or already closed)")
        if not turns:
            return []
        # Only the last 8 s count; copies, so the caller may go on appending to its buffer.
        windows = [pcm[-WINDOW_SAMPLES:].copy() for pcm in turns]
        loop = asyncio.get_running_loop()
        # The front end (about 10 ms of FFTs per turn) runs in the worker thread too.
        return await loop.run_in_executor(executor, _predict, session, windows)

    def status(self) -> dict[str, Any]:
        return worker_status(self._executor, self._session is not None)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        self._session = None
        if executor is not None:
            # A run already started finishes in its thread; queued ones are dropped.
            executor.shutdown(wait=False, cancel_futures=True)


def _open_session(path: Path) -> Any:
    # Runs in the worker thread.
    import onnxruntime as ort  # heavy import, only when used

    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    check_signature(session, path)
    return session


def check_signature(session: Any, path: Path) -> None:
    """A ``ModelError`` unless the session takes ``input_features`` float32 [*, 80, 800] and
    gives ``logits``: another ONNX file in the model's place fails here, not mid-call."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    problems = []
    if set(inputs) != {INPUT_NAME}:
        problems.append(f"inputs {sorted(inputs)}, expected ['{INPUT_NAME}']")
    else:
        spec = inputs[INPUT_NAME]
        if spec.type != "tensor(float)":
            problems.append(f"input type {spec.type}, expected tensor(float)")
        shape = list(spec.shape)
        if not _shape_fits(shape):
            problems.append(f"input shape {shape}, expected [batch, 80, 800]")
    if OUTPUT_NAME not in outputs:
        problems.append(f"outputs {sorted(outputs)}, expected '{OUTPUT_NAME}'")
    if problems:
        raise ModelError(f"not a Smart Turn v3 model: {path}: " + "; ".join(problems))


def _shape_fits(shape: list[Any]) -> bool:
    # [batch, 80, 800]; a symbolic dimension (a name such as "batch", or None) fits anything.
    if len(shape) != 1 + len(FEATURE_SHAPE):
        return False
    dims = zip(shape[1:], FEATURE_SHAPE, strict=True)
    return all(not isinstance(d, int) or d == want for d, want in dims)


def _run(session: Any, features: np.ndarray) -> np.ndarray:
    # Runs in the worker thread.
    (probabilities,) = session.run([OUTPUT_NAME], {INPUT_NAME: features})
    probabilities = np.asarray(probabilities)
    if probabilities.shape != (len(features), 1):
        raise ModelError(
            f"Smart Turn model returned shape {probabilities.shape}, expected ({len(features)}, 1)"
        )
    return probabilities


def _predict(session: Any, windows: list[np.ndarray]) -> list[float]:
    # Runs in the worker thread.
    features = np.stack([turn_features(pcm) for pcm in windows])
    probabilities = [float(p) for p in _run(session, features)[:, 0]]
    for probability in probabilities:
        if not math.isfinite(probability):
            raise ModelError(f"Smart Turn model returned {probability}")
    return [min(1.0, max(0.0, p)) for p in probabilities]

"""The web console in a real browser, on real calls: headless Chromium (Debian's chromium and
chromium-driver, through Selenium) logs in with the token URL, watches a live call's
transcript grow while sipp talks to the bot through the sandbox Asterisk, opens the call in
the history once it is over, plays its audio and sees one latency bar per turn on its
timeline; and ends a live call with the button, which hands the caller back to the dialplan.
Screenshots of each page land in .state/console-screenshots/ for people to look at.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.conftest import REPO, AsteriskSandbox, RunningBot, bot_environment, run_bot
from tests.e2e.helpers import allison, assert_all_released, wait_for
from voicebot.server.console.media import call_audio
from voicebot.tools.sip import Pause, Play, WaitForBye, place_call

pytestmark = pytest.mark.slow
CONSOLE_PORT = 18080
TOKEN = "e2e-console-token-7f3a"
SCREENSHOTS = REPO / ".state" / "console-screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
RATE = 8000
BROWSER_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
    "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
)  # fmt: skip
# An <audio> element's length once its header is read (null before).
AUDIO_DURATION = (
    "const a = document.querySelector(arguments[0]);"
    "return a && a.readyState >= 1 && isFinite(a.duration) ? a.duration : null;"
)
FITS_WIDTH = "return document.documentElement.scrollWidth <= window.innerWidth + 1;"
GRAPH_DRAWN = (
    "const i = document.querySelector('.graph img');return i && i.complete && i.naturalWidth > 0;"
)


def silence(seconds: float) -> Play:
    return Play(np.zeros(round(seconds * RATE), dtype=np.int16))


@pytest.fixture(scope="module")
def console_bot(
    asterisk: AsteriskSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBot]:
    """A bot with the console on (ARI app voicebot-console, extension 960), recording calls."""
    workdir = tmp_path_factory.mktemp("console")
    env = bot_environment(
        asterisk,
        VOICEBOT_ARI_APP="voicebot-console",
        VOICEBOT_HTTP_PORT=str(CONSOLE_PORT),
        VOICEBOT_HTTP_TOKEN=TOKEN,
        VOICEBOT_MEDIA_PORT_MIN="43400",
        VOICEBOT_MEDIA_PORT_MAX="43499",
        VOICEBOT_RECORD_ENABLED="true",
        VOICEBOT_RECORD_DIR=str(workdir / "recordings"),
        VOICEBOT_CONSOLE_HISTORY=str(workdir / "history.sqlite"),
    )
    yield from run_bot(env, workdir / "voicebot.log", CONSOLE_PORT)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/install-system-deps.sh "
                    "(chromium, chromium-driver)")  # fmt: skip
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in BROWSER_FLAGS:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
        # The pages' script raised nothing and loaded everything it asked for.
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        driver.quit()


def api(bot: RunningBot, path: str) -> dict[str, Any]:
    """The console's API with the bearer token (what a script would use)."""
    request = urllib.request.Request(
        bot.status_url + "/console/api" + path, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


async def until(driver: Any, condition: Callable[[Any], Any], within_s: float, what: str) -> Any:
    """Wait (off the event loop: Selenium blocks) until ``condition(driver)`` is truthy."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.wait import WebDriverWait

    try:
        return await asyncio.to_thread(WebDriverWait(driver, within_s, 0.2).until, condition)
    except TimeoutException:
        shot = SCREENSHOTS / f"failed-{int(time.time())}.png"
        driver.save_screenshot(str(shot))
        pytest.fail(f"{what} within {within_s} s (screenshot {shot}; page: {driver.current_url})")


LATENCY_BARS = "#timeline svg .latency-bar"
END_BUTTON = ".live-call button.danger"


def audio_duration(driver: Any, side: str) -> float | None:
    return driver.execute_script(AUDIO_DURATION, f"#audio-{side}")


def said(driver: Any, selector: str, words: str) -> bool:
    """Whether an element matching ``selector`` holds ``words`` (any case)."""
    return any(words.lower() in text.lower() for text in texts(driver, selector))


def texts(driver: Any, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, selector)]


async def test_a_real_call_live_then_in_the_history_with_audio_and_timeline(
    asterisk: AsteriskSandbox, console_bot: RunningBot, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    base = console_bot.status_url + "/console/"
    # `voicebot run` printed the login URL, as Jupyter does.
    assert f"console: {base}?token={TOKEN}" in console_bot.log_text()
    browser.get(base + "?token=" + TOKEN)
    assert browser.current_url == base  # the token is out of the address bar and history
    cookie = browser.get_cookie("voicebot_console")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    await until(browser, lambda d: texts(d, "#live-calls p"), 10, "the live page never loaded")
    browser.save_screenshot(str(SCREENSHOTS / "live-idle.png"))

    call = asyncio.create_task(place_call(
        extension="960", workdir=tmp_path, timeout_s=90,
        steps=[silence(8.0), Play(allison("hours")), silence(7.5), Play(allison("goodbye")),
               WaitForBye(timeout_s=20)],
    ))  # fmt: skip
    # The transcript grows during the call: the greeting, then the caller's "hours" and the
    # answer, all before the call ends.
    await until(browser, lambda d: texts(d, ".live-call .line.bot"), 20,
                "no live call with the bot's greeting appeared")  # fmt: skip
    await until(browser, lambda d: said(d, ".live-call .line.caller .text", "hour"), 30,
                "the caller's 'hours' never appeared in the live transcript")  # fmt: skip
    assert not call.done()
    browser.save_screenshot(str(SCREENSHOTS / "live-call.png"))
    await call
    await assert_all_released(asterisk, console_bot)
    await until(browser, lambda d: said(d, "#live-calls", "No calls right now."), 10,
                "the finished call stayed on the live page")  # fmt: skip

    browser.get(base + "#/history")
    rows = await until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".history-row"), 15,
                       "the finished call never reached the history")  # fmt: skip
    call_id = rows[0].get_attribute("data-call-id")
    browser.save_screenshot(str(SCREENSHOTS / "history.png"))
    rows[0].find_element(By.TAG_NAME, "a").click()

    stored = api(console_bot, f"/history/{call_id}")
    assert stored["has_audio"]
    expected_s = await asyncio.to_thread(
        lambda: call_audio(recording_path(console_bot, call_id)).duration_s
    )
    for side in ("both", "caller", "bot"):
        duration = await until(
            browser, partial(audio_duration, side=side), 15,
            f"the call's audio ({side}) never loaded in its <audio> element",
        )  # fmt: skip
        assert abs(duration - expected_s) < 0.1 and duration > 15

    turns = [t for t in stored["turns"] if t.get("total_ms") is not None]
    assert len(turns) == 2  # "hours" and "goodbye", each answered
    bars = await until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, LATENCY_BARS), 15,
                       "the timeline has no latency bars")  # fmt: skip
    assert sorted(b.get_attribute("data-turn") for b in bars) == sorted(
        str(t["turn"]) for t in turns
    )
    browser.save_screenshot(str(SCREENSHOTS / "call.png"))
    # A transcript line seeks the audio to the moment it was said.
    answer = next(e for e in browser.find_elements(By.CSS_SELECTOR, "ol.transcript li.caller"))
    said_at = float(answer.get_attribute("data-t"))
    answer.click()
    position = await until(browser, lambda d: d.execute_script(
        "return document.querySelector('#audio-both').currentTime || null;"), 5, "no seek",
    )  # fmt: skip
    assert abs(position - said_at) < 1.0
    # On a phone's screen the page fits its width; wide tables and the picture scroll or shrink.
    browser.set_window_size(390, 844)
    assert browser.execute_script(FITS_WIDTH)
    browser.save_screenshot(str(SCREENSHOTS / "call-phone.png"))
    browser.set_window_size(1280, 1000)

    browser.get(base + "#/scripts")
    await until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table.counts tbody tr"), 10,
                "the scripts page shows no states")  # fmt: skip
    entered = {
        row[0]: row[1] for row in (r.split() for r in texts(browser, "table.counts tbody tr"))
    }
    assert int(entered["hours"]) >= 1
    await until(browser, lambda d: d.execute_script(GRAPH_DRAWN), 15, "the flow graph never drew")
    browser.save_screenshot(str(SCREENSHOTS / "scripts.png"))

    browser.get(base + "#/health")
    status = await until(browser, lambda d: texts(d, "#health-status"), 10, "no health status")
    assert status == ["ok"]
    browser.save_screenshot(str(SCREENSHOTS / "health.png"))


async def test_end_call_hands_the_caller_back_to_the_dialplan(
    asterisk: AsteriskSandbox, console_bot: RunningBot, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    base = console_bot.status_url + "/console/"
    browser.get(base + "?token=" + TOKEN)
    before = asterisk.log_text().count("voicebot-test result stopped")
    call = asyncio.create_task(place_call(
        extension="960", workdir=tmp_path, timeout_s=90,
        steps=[Pause(40.0), WaitForBye(timeout_s=20)],
    ))  # fmt: skip
    button = await until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, END_BUTTON), 20,
                         "no live call to end")  # fmt: skip
    button[0].click()
    await wait_for(lambda: asterisk.log_text().count("voicebot-test result stopped") > before,
                   15, "the dialplan's [voicebot-after] stopped branch")  # fmt: skip
    result = await call
    assert result.hangup_by == "remote"  # Asterisk hung up after its goodbye, not the caller
    await assert_all_released(asterisk, console_bot)
    stored = api(console_bot, "/calls")
    assert stored["active"] == []


def recording_path(bot: RunningBot, call_id: str) -> Path:
    """Where the bot recorded the call (its /calls, with the token)."""
    request = urllib.request.Request(
        bot.status_url + "/calls", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        recent = json.loads(response.read())["recent"]
    return Path(next(c["recording"] for c in recent if c["call_id"] == call_id))

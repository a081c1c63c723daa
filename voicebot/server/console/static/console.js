// The voicebot console: one page, a view per hash route (#/live, #/history, #/call/<id>,
// #/scripts, #/campaigns, #/health). No framework, no build step. Data goes into the page as
// text (textContent), never as markup; the only markup inserted is the timeline SVG, which
// the server renders with every caller word escaped.
"use strict";

const API = "/console/api";
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const page = () => document.getElementById("page");
let leaving = []; // what the current view must stop when another one opens (streams, timers)

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: {}, ...options };
  if (init.method === "POST") {
    init.headers["X-CSRF-Token"] = csrf;
    if (init.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(init.body);
    }
  }
  const response = await fetch(API + path, init);
  if (response.status === 401) {
    window.location.assign("/console/login");
    throw new Error("logged out");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function show(title, ...content) {
  const main = page();
  main.replaceChildren(el("h1", { text: title }), ...content.filter((node) => node != null));
}

function failure(error) {
  return el("p", { class: "error", text: String(error.message || error) });
}

function seconds(value) {
  const total = Math.max(0, Math.round(value));
  const m = Math.floor(total / 60), s = total % 60;
  return `${m}:${String(s).padStart(2, "0")}`;
}

function when(epoch) {
  return new Date(epoch * 1000).toLocaleString();
}

function transcriptList(lines, onPick) {
  return el("ol", { class: "transcript" }, lines.map((line) => el("li", {
    class: `line ${line.who}`,
    "data-t": line.t,
    tabindex: onPick ? 0 : null,
    onclick: onPick ? () => onPick(line) : null,
    onkeydown: onPick ? (e) => { if (e.key === "Enter") onPick(line); } : null,
  },
  el("span", { class: "t", text: seconds(line.t) }),
  el("span", { class: "who", text: line.who }),
  el("span", { class: "text", text: line.text }),
  line.intent ? el("span", { class: "tag", text: line.intent }) : null,
  line.latency_ms && line.latency_ms.total_ms != null
    ? el("span", { class: "tag latency", text: `${Math.round(line.latency_ms.total_ms)} ms` })
    : null)));
}

// -- live calls -------------------------------------------------------------------------

function liveView() {
  const list = el("div", { id: "live-calls" }, el("p", { class: "muted", text: "Connecting…" }));
  show("Live calls", list);
  const source = new EventSource(`${API}/live`);
  const byId = new Map(); // the active calls: all of them on "calls", then one at a time
  let calls = [];
  const render = () => {
    calls = [...byId.values()].sort((a, b) => a.started - b.started);
    if (!calls.length) {
      list.replaceChildren(el("p", { class: "muted", text: "No calls right now." }));
      return;
    }
    const now = Date.now() / 1000;
    list.replaceChildren(...calls.map((call) => el("section", {
      class: "card live-call", "data-call-id": call.call_id,
    },
    el("div", { class: "row" },
      el("strong", { text: call.caller || "unknown caller" }),
      el("span", { text: `script ${call.script}` }),
      el("span", { class: "state", text: `state ${call.state || "–"}` }),
      el("span", { class: "duration", text: seconds(now - call.started) }),
      call.outbound ? el("span", { class: "tag", text: "outbound" }) : null,
      el("button", {
        class: "danger", text: "End call",
        onclick: async (event) => {
          event.target.disabled = true;
          try { await api(`/calls/${encodeURIComponent(call.call_id)}/end`, { method: "POST" }); }
          catch (error) { event.target.after(failure(error)); }
        },
      })),
    transcriptList(call.transcript))));
  };
  source.addEventListener("calls", (event) => {
    byId.clear();
    for (const call of JSON.parse(event.data).active) byId.set(call.call_id, call);
    render();
  });
  source.addEventListener("call", (event) => {
    const call = JSON.parse(event.data);
    byId.set(call.call_id, call);
    render();
  });
  source.addEventListener("ended", (event) => { byId.delete(JSON.parse(event.data).call_id); render(); });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) list.replaceChildren(failure("The live stream closed: reload the page."));
  };
  const ticker = setInterval(() => {
    const now = Date.now() / 1000;
    for (const call of calls) {
      const node = list.querySelector(`[data-call-id="${CSS.escape(call.call_id)}"] .duration`);
      if (node) node.textContent = seconds(now - call.started);
    }
  }, 1000);
  leaving.push(() => source.close(), () => clearInterval(ticker));
}

// -- history ----------------------------------------------------------------------------

const PAGE_SIZE = 50;

function historyView() {
  const results = el("div", { id: "history-results" });
  const field = (name, label, type = "text") => el("label", {},
    label, el("input", { name, type, autocomplete: "off" }));
  const form = el("form", { id: "history-search", class: "filters" },
    field("since", "From", "datetime-local"),
    field("until", "To", "datetime-local"),
    field("script", "Script"),
    field("outcome", "Outcome"),
    field("caller", "Caller"),
    el("button", { type: "submit", text: "Search" }));
  let offset = 0;
  const search = async () => {
    const data = new FormData(form);
    const query = { limit: PAGE_SIZE, offset };
    for (const [key, value] of data.entries()) {
      if (!value) continue;
      query[key] = (key === "since" || key === "until") ? String(new Date(value).getTime() / 1000) : value;
    }
    results.replaceChildren(el("p", { class: "muted", text: "Searching…" }));
    let body;
    try { body = await api("/history/search", { method: "POST", body: query }); }
    catch (error) { results.replaceChildren(failure(error)); return; }
    const rows = body.rows || [];
    const table = el("table", { class: "calls" },
      el("thead", {}, el("tr", {}, ["Started", "Caller", "Script", "Outcome", "Duration", "Turns", "Audio"]
        .map((h) => el("th", { text: h })))),
      el("tbody", {}, rows.map((row) => el("tr", { class: "history-row", "data-call-id": row.call_id },
        el("td", {}, el("a", { href: `#/call/${encodeURIComponent(row.call_id)}`, text: when(row.started) })),
        el("td", { text: row.caller || "" }),
        el("td", { text: row.script || "" }),
        el("td", { text: row.outcome || "" }),
        el("td", { text: seconds(row.duration_s || 0) }),
        el("td", { text: row.turns ?? "" }),
        el("td", { text: row.has_recording ? "yes" : "" })))));
    const total = body.total ?? rows.length;
    const pager = el("div", { class: "row" },
      el("span", { text: total ? `${offset + 1}–${offset + rows.length} of ${total}` : "No calls match." }),
      el("button", { text: "Newer", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE_SIZE); search(); } }),
      el("button", { text: "Older", disabled: offset + rows.length >= total, onclick: () => { offset += PAGE_SIZE; search(); } }));
    results.replaceChildren(pager, el("div", { class: "scroll" }, table));
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); offset = 0; search(); });
  show("History", form, results);
  search();
}

async function callView(callId) {
  show("Call", el("p", { class: "muted", text: "Loading…" }));
  let call;
  try { call = await api(`/history/${encodeURIComponent(callId)}`); }
  catch (error) { show("Call", failure(error)); return; }
  const record = call.record || {};
  const base = `${API}/history/${encodeURIComponent(callId)}`;
  let player = null;
  const audio = call.has_audio ? el("div", { class: "audio" },
    ["both", "caller", "bot"].map((side) => el("label", {},
      side === "both" ? "Both sides" : side === "caller" ? "Caller" : "Bot",
      el("audio", { id: `audio-${side}`, controls: true, preload: "metadata", src: `${base}/audio/${side}.wav` }))))
    : el("p", { class: "muted", text: "This call was not recorded (record.enabled, or the script's record: true)." });
  if (call.has_audio) player = audio.querySelector("#audio-both");
  const seek = player ? (line) => { player.currentTime = line.t; player.play().catch(() => {}); } : null;
  const slots = Object.entries(record.slots || {});
  const timeline = el("div", { id: "timeline", class: "scroll" }, el("p", { class: "muted", text: "Drawing the timeline…" }));
  show(`Call ${record.started ? new Date(record.started).toLocaleString() : callId}`,
    el("dl", { class: "facts" }, [
      ["Caller", record.caller_id], ["Called", record.called], ["Script", record.script],
      ["Outcome", record.outcome], ["Ended", record.end_reason],
      ["Duration", record.duration_s != null ? seconds(record.duration_s) : ""],
      record.campaign ? ["Campaign", `${record.campaign} (attempt ${record.attempt})`] : null,
      record.amd ? ["Answered by", `${record.amd.verdict} after ${record.amd.at_s} s`] : null,
    ].filter(Boolean).map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v ?? "" })])),
    el("h2", { text: "Path" }),
    el("p", { class: "path", text: (record.path || []).join(" → ") || "–" }),
    slots.length ? el("h2", { text: "Slots" }) : null,
    slots.length ? el("dl", { class: "facts" }, slots.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })])) : null,
    el("h2", { text: "Audio" }), audio,
    el("h2", { text: "Timeline" }), timeline,
    el("h2", { text: "Transcript" }),
    seek ? el("p", { class: "muted", text: "Click a line to hear it." }) : null,
    transcriptList(call.transcript || [], seek));
  try {
    const response = await fetch(`${base}/timeline.svg`, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`timeline: ${response.status}`);
    const svg = new DOMParser().parseFromString(await response.text(), "image/svg+xml").documentElement;
    if (svg.nodeName !== "svg") throw new Error("timeline: not an SVG");
    timeline.replaceChildren(document.importNode(svg, true));
  } catch (error) {
    timeline.replaceChildren(failure(error));
  }
}

// -- scripts ----------------------------------------------------------------------------

async function scriptsView(name) {
  show("Scripts", el("p", { class: "muted", text: "Loading…" }));
  let body;
  try { body = await api("/scripts"); } catch (error) { show("Scripts", failure(error)); return; }
  const scripts = body.scripts || [];
  const chosen = scripts.find((s) => s.name === name) || scripts.find((s) => s.name === body.default) || scripts[0];
  const picker = el("nav", { class: "tabs" }, scripts.map((s) => el("a", {
    href: `#/scripts/${encodeURIComponent(s.name)}`, class: s === chosen ? "active" : null, text: s.name,
  })));
  if (!chosen) { show("Scripts", el("p", { text: "No scripts loaded." })); return; }
  const counts = chosen.counts || {};
  const table = el("table", { class: "counts" },
    el("thead", {}, el("tr", {}, ["State", "Entered", "No-match", "No-input", "Hang-ups"].map((h) => el("th", { text: h })))),
    el("tbody", {}, chosen.states.map((state) => {
      const c = counts[state] || {};
      return el("tr", {}, el("td", { text: state }), el("td", { text: c.entered ?? 0 }),
        el("td", { text: c.no_match ?? 0 }), el("td", { text: c.no_input ?? 0 }), el("td", { text: c.hangups ?? 0 }));
    })));
  show(`Script ${chosen.name}`, picker,
    el("p", { class: "muted", text: chosen.title || "" }),
    el("div", { class: "scroll" }, table),
    el("h2", { text: "Flow" }),
    el("div", { class: "scroll graph" }, el("img", {
      src: `${API}/scripts/${encodeURIComponent(chosen.name)}/graph.svg`, alt: `The flow of ${chosen.name}`,
    })));
}

// -- campaigns --------------------------------------------------------------------------

async function campaignsView() {
  show("Campaigns", el("p", { class: "muted", text: "Loading…" }));
  let body;
  try { body = await api("/campaigns"); } catch (error) { show("Campaigns", failure(error)); return; }
  if (!body.outbound) {
    show("Campaigns", el("p", { text: "Outbound calling is off (outbound.endpoint in voicebot.toml; docs/outbound.md)." }));
    return;
  }
  const act = (campaign, action) => async (event) => {
    event.target.disabled = true;
    try { await api(`/campaigns/${campaign.id}/${action}`, { method: "POST" }); campaignsView(); }
    catch (error) { event.target.after(failure(error)); }
  };
  show("Campaigns", body.campaigns.length ? el("div", { class: "scroll" }, el("table", { class: "campaigns" },
    el("thead", {}, el("tr", {}, ["Campaign", "Script", "State", "Progress", "Outcomes", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, body.campaigns.map((c) => {
      const total = Object.values(c.counts).reduce((a, b) => a + b, 0);
      const pending = c.counts.pending || 0;
      return el("tr", { "data-campaign": c.id },
        el("td", { text: c.name }), el("td", { text: c.script }), el("td", { text: c.state }),
        el("td", {}, el("progress", { max: total || 1, value: total - pending }), ` ${total - pending}/${total}`),
        el("td", { text: Object.entries(c.counts).map(([k, v]) => `${k} ${v}`).join(", ") }),
        el("td", {}, c.state === "running" ? el("button", { text: "Pause", onclick: act(c, "pause") })
          : c.state === "paused" ? el("button", { text: "Resume", onclick: act(c, "resume") }) : null));
    })))) : el("p", { text: "No campaigns yet (voicebot campaign load …)." }));
}

// -- health -----------------------------------------------------------------------------

async function healthView() {
  show("Health", el("p", { class: "muted", text: "Loading…" }));
  let h;
  try { h = await api("/health"); } catch (error) { show("Health", failure(error)); return; }
  const latency = h.latency_last_hour || {};
  const engines = Object.entries(h.engines || {});
  show("Health",
    el("p", { class: `status ${h.status === "ok" ? "ok" : "bad"}`, id: "health-status", text: h.status }),
    el("dl", { class: "facts" }, [
      ["ARI link", h.ari_connected ? "connected" : "disconnected"],
      ["Active calls", `${h.active_calls} of ${h.max_active}`],
      ["Calls since start", `${h.calls_total} (failed ${h.calls_failed}, refused ${h.calls_refused})`],
      ["Answers, last hour", latency.turns ? `p50 ${latency.p50_ms} ms, p95 ${latency.p95_ms} ms from the caller's last word to the answer's first packet (${latency.turns} turns)` : "no turns"],
      ["Call history", h.history ? `${h.history.calls} ${h.history.calls === 1 ? "call" : "calls"} kept` : "off (console.history)"],
    ].map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
    el("h2", { text: "Engines" }),
    el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, ["Engine", "Loaded", "Workers alive", "Queued"].map((x) => el("th", { text: x })))),
      el("tbody", {}, engines.map(([name, e]) => el("tr", {},
        el("td", { text: name }), el("td", { text: e.loaded ?? "" }), el("td", { text: e.workers_alive ?? "" }),
        el("td", { text: e.queued ?? "" })))))),
    el("p", {}, el("a", { href: "/metrics", text: "Prometheus metrics" })));
}

// -- routing ----------------------------------------------------------------------------

function route() {
  for (const stop of leaving) stop();
  leaving = [];
  const [, name = "live", arg] = window.location.hash.match(/^#\/([^/]*)\/?(.*)$/) || [];
  document.querySelectorAll("nav a[data-page]").forEach((a) => {
    a.classList.toggle("active", a.dataset.page === (name === "call" ? "history" : name));
  });
  const views = {
    live: liveView, history: historyView, call: () => callView(decodeURIComponent(arg)),
    scripts: () => scriptsView(decodeURIComponent(arg)), campaigns: campaignsView, health: healthView,
  };
  (views[name] || liveView)();
}

window.addEventListener("hashchange", route);
route();

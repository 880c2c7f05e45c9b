// The A/B listening page: two synchronised players, listening-coverage tracking, the vote and the skip.
// The server re-checks everything; this module only makes the honest path pleasant and loses nothing:
// listening progress, answers and feedback are kept as a draft in this browser, per assignment, so a reload,
// a crash or an expired session (log in again, come back) restores them.

const data = JSON.parse(document.getElementById("assignment-data").textContent);
const csrfToken = document.querySelector("#csrf input[name=csrfmiddlewaretoken]").value;
const loginUrl = document.getElementById("vote-form").dataset.loginUrl;
const pageOpenedMs = performance.now();
const SEEK_STEP_S = 5;
// Gaps narrower than this between heard stretches are timer jitter, not unheard music.
const GAP_S = 0.02;
const DRAFT_KEY = `cmi-listen-draft:${data.id}`;
const DRAFT_PREFIX = "cmi-listen-draft:";
const DRAFT_MAX_AGE_MS = 14 * 24 * 3600 * 1000;
const VOLUME_KEY = "cmi-listen-volume";
let loop = null; // {start, end|null} in seconds, shared by A and B (they are compared at the same moments)
let sessionEnded = false;

// A page restored from the back/forward cache is stale (it may have been voted on): ask the server again,
// which sends a voted comparison on to the next one.
window.addEventListener("pageshow", (event) => { if (event.persisted) window.location.reload(); });

// --- drafts -------------------------------------------------------------------------------------
function readDraft() {
  try {
    const draft = JSON.parse(localStorage.getItem(DRAFT_KEY) || "null");
    return draft && draft.v === 1 ? draft : null;
  } catch { return null; }
}

function pruneOldDrafts() {
  try {
    for (let i = localStorage.length - 1; i >= 0; i -= 1) {
      const key = localStorage.key(i);
      if (!key || !key.startsWith(DRAFT_PREFIX) || key === DRAFT_KEY) continue;
      const saved = JSON.parse(localStorage.getItem(key) || "{}").savedAt || 0;
      if (Date.now() - saved > DRAFT_MAX_AGE_MS) localStorage.removeItem(key);
    }
  } catch { /* storage unavailable: drafts are a convenience */ }
}

const draft = readDraft();
pruneOldDrafts();
const startedAt = draft && draft.startedAt ? new Date(draft.startedAt) : new Date();
const activeMsBefore = draft ? draft.activeMs || 0 : 0;
function activeMs() { return activeMsBefore + (performance.now() - pageOpenedMs); }

// The reservation's end, in the annotator's own time zone; past it, say what still works.
const expiry = document.querySelector(".lp-expiry");
const expiresAt = new Date(data.expires_at);
expiry.querySelector("time").textContent = expiresAt.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const expiryTimer = setInterval(() => {
  if (Date.now() < expiresAt.getTime()) return;
  expiry.textContent = "Your reservation has lapsed: your vote still counts if this pair still needs votes.";
  expiry.classList.add("lapsed");
  clearInterval(expiryTimer);
}, 15_000);

function formatTime(seconds) {
  if (!Number.isFinite(seconds)) return "0:00";
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// Union of [start, end] intervals, sorted; the same merge the server does.
function mergeIntervals(intervals) {
  const sorted = intervals.filter(([a, b]) => b > a).map(([a, b]) => [a, b]).sort((x, y) => x[0] - y[0]);
  const merged = [];
  for (const [start, end] of sorted) {
    const last = merged[merged.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

function validIntervals(value) {
  if (!Array.isArray(value)) return [];
  return value.filter((pair) => Array.isArray(pair) && pair.length === 2 && pair.every(Number.isFinite) && pair[0] >= 0);
}

class Player {
  constructor(root, { duration, peaks = [], required = 0 }) {
    this.root = root;
    this.side = root.dataset.side;
    this.audio = root.querySelector("audio");
    this.button = root.querySelector("button.play");
    this.canvas = root.querySelector("canvas.wave");
    this.seek = root.querySelector("input.seek");
    this.clock = root.querySelector(".clock");
    this.duration = duration;
    this.peaks = peaks;
    this.required = required;
    this.intervals = [];
    this.mark = null; // media time where the current uninterrupted stretch of playback started
    this.markWall = 0;
    this.onChange = () => {};
    this.onEnded = () => false;
    this.bind();
    this.draw();
  }

  bind() {
    const a = this.audio;
    a.addEventListener("loadedmetadata", () => { if (Number.isFinite(a.duration)) this.duration = a.duration; this.draw(); });
    a.addEventListener("play", () => this.startMark());
    a.addEventListener("playing", () => this.startMark());
    a.addEventListener("timeupdate", () => { this.extend(); this.draw(); });
    a.addEventListener("pause", () => { this.extend(); this.mark = null; this.draw(); });
    a.addEventListener("ended", () => {
      this.extend();
      this.mark = null;
      this.draw();
      this.onEnded(this);
    });
    // A seek breaks the stretch: the jump itself is never counted as listening.
    a.addEventListener("seeking", () => { this.mark = null; });
    a.addEventListener("seeked", () => { if (!a.paused) this.startMark(); this.draw(); });
    this.seek.addEventListener("input", () => this.seekTo((this.seek.value / 1000) * this.duration));
    this.canvas.addEventListener("click", (event) => {
      const box = this.canvas.getBoundingClientRect();
      this.seekTo(((event.clientX - box.left) / box.width) * this.duration);
    });
    window.addEventListener("resize", () => this.draw());
    a.addEventListener("error", () => explainAudioError(this));
  }

  startMark() {
    this.mark = this.audio.currentTime;
    this.markWall = performance.now();
  }

  // Record [mark, now] if media time advanced no faster than the wall clock (so a missed seek can't count).
  extend() {
    if (this.mark === null || this.audio.paused && this.audio.currentTime === this.mark) return;
    const now = this.audio.currentTime;
    const advanced = now - this.mark;
    const wall = (performance.now() - this.markWall) / 1000;
    if (advanced > 0 && advanced <= wall * 1.5 + 0.3) {
      this.intervals = mergeIntervals([...this.intervals, [this.mark, now]]);
      this.onChange();
    }
    this.mark = this.audio.paused ? null : now;
    this.markWall = performance.now();
  }

  heardSeconds() {
    return this.intervals.reduce((sum, [a, b]) => sum + (b - a), 0);
  }

  requirementMet() {
    return this.heardSeconds() >= this.required;
  }

  // The start of the first stretch not heard yet, or null when everything up to the end was heard.
  firstUnheard() {
    let covered = 0;
    for (const [a, b] of this.intervals) {
      if (a > covered + GAP_S) break;
      covered = Math.max(covered, b);
    }
    return covered < this.duration - GAP_S ? covered : null;
  }

  get playing() { return !this.audio.paused && !this.audio.ended; }

  play() { return this.audio.play().catch(() => {}); }

  pause() { this.audio.pause(); }

  seekTo(seconds) {
    this.extend();
    this.audio.currentTime = Math.min(Math.max(0, seconds), Math.max(0, this.duration - 0.05));
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || canvas.height;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const styles = getComputedStyle(this.root);
    const duration = this.duration || 1;
    const position = this.audio.currentTime / duration;
    // Heard stretches are shaded under the waveform, so the annotator sees what still needs listening.
    ctx.fillStyle = styles.getPropertyValue("--heard").trim() || "#dbe6ff";
    for (const [a, b] of this.intervals) ctx.fillRect((a / duration) * width, 0, ((b - a) / duration) * width, height);
    if (loop && this.side !== "R") {
      ctx.fillStyle = styles.getPropertyValue("--loop").trim() || "rgba(255, 170, 0, .25)";
      const end = loop.end ?? duration;
      ctx.fillRect((loop.start / duration) * width, 0, ((end - loop.start) / duration) * width, height);
    }
    const bars = Math.max(1, Math.floor(width / 3));
    const mid = height / 2;
    for (let i = 0; i < bars; i += 1) {
      const peak = this.peaks.length ? this.peaks[Math.floor((i / bars) * this.peaks.length)] : 0.05;
      const h = Math.max(1, peak * (height - 6));
      ctx.fillStyle = i / bars < position ? styles.getPropertyValue("--wave-played").trim() || "#2457d6"
        : styles.getPropertyValue("--wave").trim() || "#9aa3b5";
      ctx.fillRect(i * 3, mid - h / 2, 2, h);
    }
    ctx.fillStyle = styles.getPropertyValue("--playhead").trim() || "#111";
    ctx.fillRect(Math.min(width - 2, position * width), 0, 2, height);
    this.seek.value = String(Math.round(position * 1000));
    this.seek.setAttribute("aria-valuetext", `${formatTime(this.audio.currentTime)} of ${formatTime(this.duration)}`);
    if (!this.root.classList.contains("is-broken")) {
      this.clock.textContent = `${formatTime(this.audio.currentTime)} / ${formatTime(this.duration)}`;
    }
    this.button.textContent = this.playing ? "❚❚" : "▶";
    this.button.setAttribute("aria-label", `${this.playing ? "Pause" : "Play"} ${this.side === "R" ? "reference" : this.side}`);
    this.root.classList.toggle("is-playing", this.playing);
  }
}

// A clip that fails to load is broken audio only if the server says so; an ended session or a closed
// comparison get their own message, because skipping as "Broken audio" would be wrong for them.
async function explainAudioError(player) {
  player.root.classList.add("is-broken");
  let cause = "broken";
  try {
    const probe = await fetch(player.audio.currentSrc || player.audio.src, {
      headers: { Range: "bytes=0-0" }, redirect: "manual", credentials: "same-origin",
    });
    if (probe.type === "opaqueredirect" || probe.status === 401) cause = "session";
    else if (probe.status === 403 || probe.status === 404) cause = "closed";
  } catch { cause = "network"; }
  const messages = {
    broken: "This clip failed to load. Reload the page, or skip with “Broken audio”.",
    session: "Your session ended, so the clip can't load.",
    closed: "This comparison is closed.",
    network: "The clip couldn't load: check your connection, then reload (your progress is kept).",
  };
  player.clock.textContent = messages[cause];
  if (cause === "session") showSessionEnded();
  if (cause === "closed") showError("This comparison is closed.", { moveOn: true });
}

const clips = {};
for (const side of ["A", "B"]) {
  const info = data.clips[side];
  clips[side] = new Player(document.querySelector(`.player[data-side="${side}"]`), {
    duration: info.duration_s, peaks: info.peaks, required: info.required_listen_s,
  });
}
const refRoot = document.querySelector('.player[data-side="R"]');
const reference = refRoot ? new Player(refRoot, data.instruction.reference) : null;
const everyone = [clips.A, clips.B, reference].filter(Boolean);
let active = clips.A;

// One sound at a time. Switching A↔B while one plays carries its position over (synchronised switching).
function activate(target) {
  const from = everyone.find((p) => p.playing && p !== target);
  for (const p of everyone) if (p !== target) p.pause();
  if (from && from !== reference && target !== reference) target.seekTo(from.audio.currentTime);
  if (target !== reference) active = target;
  target.play();
}

function toggle(player) {
  if (player.playing) player.pause();
  else activate(player);
}

for (const p of everyone) {
  p.button.addEventListener("click", () => toggle(p));
  p.audio.addEventListener("play", () => { for (const q of everyone) if (q !== p) q.pause(); });
}

// --- loop region, continuing past the end, volume ----------------------------------------------
const loopStatus = document.getElementById("loop-status");

function describeLoop() {
  loopStatus.textContent = loop
    ? `Loop ${formatTime(loop.start)}–${loop.end === null ? "end" : formatTime(loop.end)}`
    : "No loop";
  for (const p of [clips.A, clips.B]) p.draw();
  saveDraftSoon();
}

function setLoopStart() {
  const at = active.audio.currentTime;
  loop = { start: at, end: loop && loop.end !== null && loop.end > at + 0.5 ? loop.end : null };
  describeLoop();
}

function setLoopEnd() {
  const at = active.audio.currentTime;
  const start = loop ? loop.start : 0;
  if (at <= start + 0.5) { loopStatus.textContent = "The loop's end must come at least 0.5 s after its start."; return; }
  loop = { start, end: at };
  describeLoop();
}

function clearLoop() { loop = null; describeLoop(); }

for (const p of [clips.A, clips.B]) {
  p.audio.addEventListener("timeupdate", () => {
    if (loop && loop.end !== null && p.playing && p.audio.currentTime >= loop.end) p.seekTo(loop.start);
  });
  p.onEnded = (player) => {
    if (loop) { player.seekTo(loop.start); player.play(); return; }
    // Switching keeps the position, so a clip can end before enough of it was heard: carry on from the
    // first part not heard yet instead of stopping short of the requirement.
    const gap = player.requirementMet() ? null : player.firstUnheard();
    if (gap === null) return;
    announce(`Clip ${player.side}: continuing from ${formatTime(gap)}, the first part you haven't heard.`);
    player.seekTo(gap);
    player.play();
  };
}

document.getElementById("loop-start").addEventListener("click", setLoopStart);
document.getElementById("loop-end").addEventListener("click", setLoopEnd);
document.getElementById("loop-clear").addEventListener("click", clearLoop);

const volume = document.getElementById("volume");
function applyVolume() {
  for (const p of everyone) p.audio.volume = Number(volume.value) / 100;
  try { localStorage.setItem(VOLUME_KEY, volume.value); } catch { /* not kept: fine */ }
}
volume.addEventListener("input", applyVolume);

const announcer = document.getElementById("player-status");
function announce(message) { announcer.textContent = message; }

// --- keyboard ------------------------------------------------------------------------------------
// Shortcuts never take a key a focused control needs: nothing while typing; on other controls (radios,
// buttons, sliders, links) only letters and digits those controls ignore, so Space, Enter and the arrow keys
// keep their usual meaning there; Space and ←/→ act as playback keys only when no control has the focus.
function typing(target) {
  if (target.isContentEditable) return true;
  if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
  return target.tagName === "INPUT" && !["radio", "checkbox", "range", "button", "submit"].includes(target.type);
}

function onControl(target) {
  return target.closest("input, button, a[href], summary, select, textarea, [role=radio], [tabindex]") !== null
    && target !== document.body;
}

const letterActions = {
  "1": () => activate(clips.A),
  "2": () => activate(clips.B),
  k: () => toggle(active),
  j: () => active.seekTo(active.audio.currentTime - SEEK_STEP_S),
  l: () => active.seekTo(active.audio.currentTime + SEEK_STEP_S),
  r: () => reference && toggle(reference),
  "[": setLoopStart,
  "]": setLoopEnd,
  "\\": clearLoop,
};
const pageActions = {
  " ": () => toggle(active),
  ArrowLeft: () => active.seekTo(active.audio.currentTime - SEEK_STEP_S),
  ArrowRight: () => active.seekTo(active.audio.currentTime + SEEK_STEP_S),
};

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented || typing(event.target)) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const action = letterActions[key] || (!onControl(event.target) && pageActions[key]);
  if (!action) return;
  event.preventDefault();
  action();
});

// --- the vote ---------------------------------------------------------------------------------
const form = document.getElementById("vote-form");
const submit = document.getElementById("submit-vote");
const statusLine = document.getElementById("vote-status");
let sending = false;
let finished = false;

function chosen(name) {
  const input = form.querySelector(`input[name="${name}"]:checked`);
  return input ? input.value : null;
}

function missing() {
  for (const side of ["A", "B"]) {
    const p = clips[side];
    if (!p.requirementMet()) {
      const left = Math.max(0, p.required - p.heardSeconds());
      return `Listen to ${left.toFixed(1)} s more of clip ${side}.`;
    }
  }
  if (!chosen("alignment")) return "Q1: choose A or B.";
  if (!chosen("alignment_confidence")) return "Q1: choose a confidence from 1 to 5.";
  if (!chosen("musicality")) return "Q2: choose A or B.";
  if (!chosen("musicality_confidence")) return "Q2: choose a confidence from 1 to 5.";
  if (data.campaign.feedback_required && !form.feedback.value.trim()) return "Write a short feedback.";
  return null;
}

function refresh() {
  for (const side of ["A", "B"]) {
    const p = clips[side];
    const badge = document.querySelector(`[data-heard="${side}"]`);
    badge.querySelector("b").textContent = Math.min(p.heardSeconds(), p.duration).toFixed(1);
    badge.classList.toggle("met", p.requirementMet());
  }
  saveDraftSoon();
  if (sending) return;
  const reason = missing();
  submit.disabled = reason !== null;
  // The session message carries the login link: playback updates must not wipe it.
  if (sessionEnded) return;
  statusLine.textContent = reason || "Ready to submit.";
  statusLine.classList.remove("error");
}

// --- saving and restoring the draft --------------------------------------------------------------
const ANSWERS = ["alignment", "alignment_confidence", "musicality", "musicality_confidence"];

function saveDraft() {
  if (finished) return;
  const positions = {};
  const intervals = {};
  for (const p of everyone) {
    p.extend();
    positions[p.side] = p.audio.currentTime;
    intervals[p.side] = p.intervals;
  }
  const answers = Object.fromEntries(ANSWERS.map((name) => [name, chosen(name)]));
  const body = {
    v: 1, savedAt: Date.now(), startedAt: startedAt.toISOString(), activeMs: activeMs(),
    intervals, positions, answers, feedback: form.feedback.value, active: active.side, loop,
  };
  try { localStorage.setItem(DRAFT_KEY, JSON.stringify(body)); } catch { /* storage full or disabled */ }
}

let saveTimer = null;
function saveDraftSoon() {
  if (saveTimer !== null || finished) return;
  saveTimer = setTimeout(() => { saveTimer = null; saveDraft(); }, 400);
}

function dropDraft() {
  finished = true;
  try { localStorage.removeItem(DRAFT_KEY); } catch { /* nothing to drop */ }
}

function restoreDraft() {
  if (!draft) return;
  for (const p of everyone) {
    p.intervals = mergeIntervals(validIntervals(draft.intervals && draft.intervals[p.side]));
    const at = Number(draft.positions && draft.positions[p.side]);
    if (Number.isFinite(at) && at > 0) {
      const place = () => p.seekTo(at);
      if (p.audio.readyState >= 1) place(); else p.audio.addEventListener("loadedmetadata", place, { once: true });
    }
  }
  if (draft.active === "B") active = clips.B;
  for (const name of ANSWERS) {
    const value = draft.answers && draft.answers[name];
    const input = value && form.querySelector(`input[name="${name}"][value="${CSS.escape(String(value))}"]`);
    if (input) input.checked = true;
  }
  if (typeof draft.feedback === "string") form.feedback.value = draft.feedback;
  if (draft.loop && Number.isFinite(draft.loop.start)) loop = draft.loop;
  describeLoop();
  for (const p of everyone) p.draw();
  const when = new Date(draft.savedAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  document.getElementById("draft-status").textContent =
    `Restored your listening progress and answers, saved at ${when}.`;
}

try { volume.value = localStorage.getItem(VOLUME_KEY) || volume.value; } catch { /* default volume */ }
applyVolume();
restoreDraft();
for (const p of [clips.A, clips.B]) p.onChange = refresh;
form.addEventListener("input", refresh);
form.addEventListener("change", refresh);
// Keep the draft current while listening and when the page goes away (reload, tab closed, device asleep).
setInterval(() => { if (everyone.some((p) => p.playing)) saveDraft(); }, 2000);
window.addEventListener("pagehide", saveDraft);
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") saveDraft(); });
refresh();

function showError(message, { moveOn = false } = {}) {
  statusLine.textContent = message;
  statusLine.classList.add("error");
  if (moveOn) {
    const link = document.createElement("a");
    link.href = data.next_url;
    link.className = "button primary";
    link.textContent = "Continue to the next comparison";
    statusLine.append(" ", link);
  }
}

function showSessionEnded() {
  saveDraft();
  sessionEnded = true;
  statusLine.textContent = "Your session has ended. Your listening progress, answers and feedback are saved in this browser. ";
  statusLine.classList.add("error");
  const link = document.createElement("a");
  link.href = loginUrl;
  link.className = "button primary";
  link.id = "login-again";
  link.textContent = "Log in again and return to this comparison";
  statusLine.append(link);
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/json" },
    body: JSON.stringify(body),
  });
  let payload = {};
  try { payload = await response.json(); } catch { /* an HTML error page: keep the status code */ }
  return { response, payload };
}

// Every API error has one shape: {error: {code, message, field, details}} (annotate/errors.py).
function describe(payload) {
  return payload.error?.message || "The request failed; please try again.";
}

// DRF answers 403 both for "not logged in" and for a failed CSRF check (after logging in again elsewhere);
// either way logging in again and reloading the page is the cure.
function sessionProblem(response, payload) {
  if (response.status === 401) return true;
  if (response.status !== 403) return false;
  const error = payload.error || {};
  return ["not_authenticated", "authentication_failed", "csrf_failed"].includes(error.code) || /CSRF|credentials/i.test(error.message || "");
}

// The next comparison is reserved by a POST (a GET reserves nothing, so no other site can make one);
// the server answers with a redirect to the new listening page.
function moveOn(url) {
  dropDraft();
  const next = document.createElement("form");
  next.method = "post";
  next.action = url || data.next_url;
  const token = document.createElement("input");
  token.type = "hidden";
  token.name = "csrfmiddlewaretoken";
  token.value = csrfToken;
  next.append(token);
  document.body.append(next);
  next.submit();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (sending || missing()) return;
  for (const p of everyone) { p.pause(); p.extend(); }
  saveDraft();
  sending = true;
  submit.disabled = true;
  statusLine.classList.remove("error");
  statusLine.textContent = "Sending…";
  const body = {
    alignment: chosen("alignment"),
    alignment_confidence: Number(chosen("alignment_confidence")),
    musicality: chosen("musicality"),
    musicality_confidence: Number(chosen("musicality_confidence")),
    feedback: form.feedback.value,
    listened: { A: clips.A.intervals, B: clips.B.intervals },
    time_on_task_s: Math.round(activeMs() / 100) / 10,
    started_at: startedAt.toISOString(),
  };
  try {
    const { response, payload } = await postJson(data.vote_url, body);
    if (response.status === 201) {
      statusLine.textContent = "Saved. Loading the next comparison…";
      moveOn(payload.next_url);
      return;
    }
    sending = false;
    if (sessionProblem(response, payload)) { showSessionEnded(); submit.disabled = false; return; }
    if (response.status === 409) { dropDraft(); showError(describe(payload), { moveOn: true }); return; }
    showError(describe(payload));
    submit.disabled = false;
  } catch {
    sending = false;
    submit.disabled = false;
    showError("Network error: your vote was not sent (your answers are kept). Check your connection and submit again.");
  }
});

// --- the skip ---------------------------------------------------------------------------------
const skipForm = document.getElementById("skip-form");
skipForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const skipStatus = document.getElementById("skip-status");
  const reason = skipForm.querySelector("input[name=reason]:checked").value;
  const { response, payload } = await postJson(data.skip_url, { reason, note: skipForm.note.value });
  if (response.status === 201 || response.status === 409) {
    moveOn(payload.next_url);
    return;
  }
  if (sessionProblem(response, payload)) { showSessionEnded(); return; }
  skipStatus.textContent = describe(payload);
  skipStatus.classList.add("error");
});

// The A/B listening page: two synchronised players, listening-coverage tracking, the vote and the skip.
// The server re-checks everything; this module only makes the honest path pleasant.

const data = JSON.parse(document.getElementById("assignment-data").textContent);
const csrfToken = document.querySelector("#csrf input[name=csrfmiddlewaretoken]").value;
const pageOpenedAt = new Date();
const pageOpenedMs = performance.now();
const SEEK_STEP_S = 5;

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
  const sorted = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const merged = [];
  for (const [start, end] of sorted) {
    const last = merged[merged.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
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
    a.addEventListener("ended", () => { this.extend(); this.mark = null; this.draw(); });
    // A seek breaks the stretch: the jump itself is never counted as listening.
    a.addEventListener("seeking", () => { this.mark = null; });
    a.addEventListener("seeked", () => { if (!a.paused) this.startMark(); this.draw(); });
    this.seek.addEventListener("input", () => this.seekTo((this.seek.value / 1000) * this.duration));
    this.canvas.addEventListener("click", (event) => {
      const box = this.canvas.getBoundingClientRect();
      this.seekTo(((event.clientX - box.left) / box.width) * this.duration);
    });
    window.addEventListener("resize", () => this.draw());
    a.addEventListener("error", () => {
      this.root.classList.add("is-broken");
      this.clock.textContent = "This clip failed to load. Reload the page, or skip with “Broken audio”.";
    });
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
    if (!this.root.classList.contains("is-broken")) {
      this.clock.textContent = `${formatTime(this.audio.currentTime)} / ${formatTime(this.duration)}`;
    }
    this.button.textContent = this.playing ? "❚❚" : "▶";
    this.button.setAttribute("aria-label", `${this.playing ? "Pause" : "Play"} ${this.side}`);
    this.root.classList.toggle("is-playing", this.playing);
  }
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

document.addEventListener("keydown", (event) => {
  const tag = event.target.tagName;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (tag === "TEXTAREA" || (tag === "INPUT" && event.target.type === "text") || tag === "SELECT") return;
  const actions = {
    "1": () => activate(clips.A),
    "2": () => activate(clips.B),
    " ": () => toggle(active),
    ArrowLeft: () => active.seekTo(active.audio.currentTime - SEEK_STEP_S),
    ArrowRight: () => active.seekTo(active.audio.currentTime + SEEK_STEP_S),
    r: () => reference && toggle(reference),
    R: () => reference && toggle(reference),
  };
  const action = actions[event.key];
  if (!action) return;
  event.preventDefault();
  action();
});

// --- the vote ---------------------------------------------------------------------------------
const form = document.getElementById("vote-form");
const submit = document.getElementById("submit-vote");
const statusLine = document.getElementById("vote-status");
let sending = false;

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
  if (sending) return;
  const reason = missing();
  submit.disabled = reason !== null;
  statusLine.textContent = reason || "Ready to submit.";
  statusLine.classList.remove("error");
}

for (const p of [clips.A, clips.B]) p.onChange = refresh;
form.addEventListener("input", refresh);
form.addEventListener("change", refresh);
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

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (sending || missing()) return;
  for (const p of everyone) { p.pause(); p.extend(); }
  sending = true;
  submit.disabled = true;
  statusLine.textContent = "Sending…";
  const body = {
    alignment: chosen("alignment"),
    alignment_confidence: Number(chosen("alignment_confidence")),
    musicality: chosen("musicality"),
    musicality_confidence: Number(chosen("musicality_confidence")),
    feedback: form.feedback.value,
    listened: { A: clips.A.intervals, B: clips.B.intervals },
    time_on_task_s: Math.round((performance.now() - pageOpenedMs) / 100) / 10,
    started_at: pageOpenedAt.toISOString(),
  };
  try {
    const { response, payload } = await postJson(data.vote_url, body);
    if (response.status === 201) {
      statusLine.textContent = "Saved. Loading the next comparison…";
      window.location.assign(payload.next_url || data.next_url);
      return;
    }
    sending = false;
    if (response.status === 409) { showError(describe(payload), { moveOn: true }); return; }
    if (response.status === 403 || response.status === 401) { showError("Your session ended: please log in again."); return; }
    showError(describe(payload));
    submit.disabled = false;
  } catch {
    sending = false;
    submit.disabled = false;
    showError("Network error: your vote was not sent. Check your connection and submit again.");
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
    window.location.assign(payload.next_url || data.next_url);
    return;
  }
  skipStatus.textContent = describe(payload);
  skipStatus.classList.add("error");
});

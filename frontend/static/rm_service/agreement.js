// Model-vs-human dashboard: reliability plots and accuracy over time; refreshes as votes arrive.
import { plot } from "./charts.js";

const root = document.getElementById("agreement");

// Choosing another model version reloads the page for it (no inline handler: the CSP forbids them).
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.submit());
}
const fmt = (a) => (a.accuracy == null ? "–" : `${a.accuracy.toFixed(3)} (n=${a.n})`);

function render(data) {
  root.querySelector('[data-field="votes"]').textContent = data.votes;
  for (const [question, q] of Object.entries(data.questions)) {
    const section = root.querySelector(`[data-question="${question}"]`);
    section.querySelector('[data-field="single"]').textContent = fmt(q.single_votes);
    section.querySelector('[data-field="majority"]').textContent = fmt(q.majority);
    section.querySelector('[data-field="ece"]').textContent = q.calibration.ece == null ? "–" : q.calibration.ece.toFixed(3);
    plot(section.querySelector("canvas.reliability"), [
      { points: q.calibration.bins.map((b) => [b.mean_prob, b.observed]), color: "#2457d6", label: "observed" },
    ], { xMax: 1, diagonal: true });
    plot(section.querySelector("canvas.over-time"), [
      { points: q.over_time.map((p) => [p.n, p.accuracy]), color: "#127a3f", label: "cumulative acc" },
    ]);
  }
}

if (root) {
  render(JSON.parse(document.getElementById("agreement-data").textContent));
  setInterval(async () => {
    const response = await fetch(root.dataset.api, { headers: { Accept: "application/json" } });
    if (response.ok) render(await response.json());
  }, 10000);
}

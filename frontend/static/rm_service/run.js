// Live progress of a training run: polls the run's API and redraws loss and validation score.
import { plot } from "./charts.js";

const root = document.getElementById("run");
const field = (name) => root.querySelector(`[data-field="${name}"]`);

function render(run) {
  field("status").textContent = run.status;
  field("step").textContent = run.step;
  field("total_steps").textContent = run.total_steps;
  field("loss").textContent = run.loss == null ? "–" : run.loss.toFixed(4);
  field("val").textContent = run.val_metrics && run.val_metrics.score != null ? run.val_metrics.score.toFixed(3) : "–";
  field("attempts").textContent = run.attempts;
  field("error").textContent = run.error || "";
  const bar = root.querySelector("progress");
  bar.max = run.total_steps || 1; bar.value = run.step;
  const loss = run.history.filter((p) => p.loss != null).map((p) => [p.step, p.loss]);
  const val = run.history.filter((p) => p.val && p.val.score != null).map((p) => [p.step, p.val.score]);
  const yMax = Math.max(1, ...loss.map((p) => p[1]));
  plot(document.getElementById("loss-chart"), [
    { points: loss, color: "#2457d6", label: "loss" },
    { points: val, color: "#127a3f", label: "val score" },
  ], { xMax: Math.max(run.total_steps, 1), yMax });
  return !["succeeded", "failed", "cancelled"].includes(run.status);
}

async function poll() {
  const response = await fetch(root.dataset.api, { headers: { Accept: "application/json" } });
  if (response.ok && render(await response.json())) setTimeout(poll, 2000);
  else if (!response.ok) setTimeout(poll, 5000);
}
poll();

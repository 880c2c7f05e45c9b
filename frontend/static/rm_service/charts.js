// Tiny canvas line/scatter plots shared by the reward-model pages (no chart library needed).
export function plot(canvas, series, { xMax = null, yMin = 0, yMax = 1, diagonal = false } = {}) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 28;
  ctx.clearRect(0, 0, w, h);
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const x1 = xMax ?? Math.max(1, ...xs);
  const sx = (x) => pad + (x / x1) * (w - 2 * pad);
  const sy = (y) => h - pad - ((y - yMin) / (yMax - yMin || 1)) * (h - 2 * pad);
  ctx.strokeStyle = "#dedee3"; ctx.strokeRect(pad, pad, w - 2 * pad, h - 2 * pad);
  ctx.fillStyle = "#6b6b70"; ctx.font = "11px sans-serif";
  ctx.fillText(String(yMax.toFixed ? yMax.toFixed(2) : yMax), 2, pad + 4);
  ctx.fillText(String(yMin.toFixed ? yMin.toFixed(2) : yMin), 2, h - pad);
  if (diagonal) { ctx.strokeStyle = "#bbb"; ctx.beginPath(); ctx.moveTo(sx(0), sy(0)); ctx.lineTo(sx(x1), sy(1)); ctx.stroke(); }
  for (const s of series) {
    ctx.strokeStyle = ctx.fillStyle = s.color;
    ctx.beginPath();
    s.points.forEach(([x, y], i) => (i ? ctx.lineTo(sx(x), sy(y)) : ctx.moveTo(sx(x), sy(y))));
    ctx.stroke();
    for (const [x, y] of s.points) { ctx.beginPath(); ctx.arc(sx(x), sy(y), 2.5, 0, 2 * Math.PI); ctx.fill(); }
    if (s.label) ctx.fillText(s.label, w - pad - 90, pad + 12 + 12 * series.indexOf(s));
  }
}

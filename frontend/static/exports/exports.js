// Live progress for queued and running exports: poll the detail API, reload once one finishes.
const POLL_MS = 1500;
const exports = JSON.parse(document.getElementById("exports-data").textContent);

function rowFor(id) {
  return document.querySelector(`tr[data-export="${id}"]`);
}

function show(row, data) {
  row.dataset.status = data.status;
  const status = row.querySelector(".status");
  status.textContent = data.status.charAt(0).toUpperCase() + data.status.slice(1);
  status.className = `status status-${data.status}`;
  row.querySelector("progress").value = data.progress;
  row.querySelector(".message").textContent = data.progress_message;
}

async function poll(item) {
  const row = rowFor(item.id);
  if (!row) return;
  try {
    const response = await fetch(item.detail_url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const data = await response.json();
    show(row, data);
    if (data.status === "succeeded" || data.status === "failed") {
      // The finished row has download links and counts; the server renders those.
      window.location.reload();
      return;
    }
  } catch (error) {
    row.querySelector(".message").textContent = `progress unavailable (${error.message}); retrying`;
  }
  setTimeout(() => poll(item), POLL_MS);
}

for (const item of exports) {
  if (item.status === "queued" || item.status === "running") poll(item);
}

// Live progress of queued and running imports: poll the detail API, reload once one finishes
// (the server renders the counts and every problem with its manifest line).
const POLL_MS = 1000;
const imports = JSON.parse(document.getElementById("imports-data").textContent);

function show(row, data) {
  row.dataset.status = data.status;
  const status = row.querySelector(".status");
  status.textContent = data.status.charAt(0).toUpperCase() + data.status.slice(1);
  status.className = `status status-${data.status}`;
  row.querySelector("progress").value = data.progress;
  row.querySelector(".message").textContent = data.progress_message;
}

async function poll(item) {
  const row = document.querySelector(`tr[data-import="${item.id}"]`);
  if (!row) return;
  try {
    const response = await fetch(item.detail_url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const data = await response.json();
    if (data.status === "succeeded" || data.status === "failed") {
      window.location.reload();
      return;
    }
    show(row, data);
  } catch (error) {
    row.querySelector(".message").textContent = `progress unavailable (${error.message}); retrying`;
  }
  setTimeout(() => poll(item), POLL_MS);
}

for (const item of imports) {
  if (item.status === "queued" || item.status === "running") poll(item);
}

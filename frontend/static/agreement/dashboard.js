// Agreement dashboard: click a header of a .sortable table to sort by that column (again to reverse).
// Cells carry data-sort; numeric unless the header says data-type="text"; empty values sort last.

function sortTable(table, column, textual, ascending) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows).filter((row) => row.cells.length > column);
  const key = (row) => row.cells[column].dataset.sort ?? row.cells[column].textContent.trim();
  rows.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    if (x === "" || y === "") return (x === "") - (y === "");
    const order = textual ? x.localeCompare(y) : Number(x) - Number(y);
    return ascending ? order : -order;
  });
  rows.forEach((row) => body.appendChild(row));
}

for (const table of document.querySelectorAll("table.sortable")) {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((th, column) => {
    th.tabIndex = 0;
    th.setAttribute("role", "button");
    const activate = () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach((other) => other.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      sortTable(table, column, th.dataset.type === "text", ascending);
    };
    th.addEventListener("click", activate);
    th.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        activate();
      }
    });
  });
}

// Sortable tables: click a header of a table with class "sortable". Cells sort by their
// data-sort attribute when present, else by their text; empty values always go last.
"use strict";
(function () {
  function key(cell, numeric) {
    const raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (raw === "") return null;
    if (!numeric) return raw.toLowerCase();
    const value = parseFloat(raw);
    return Number.isNaN(value) ? null : value;
  }

  function sortBy(table, th, column) {
    const numeric = th.dataset.type === "number";
    const current = th.getAttribute("aria-sort");
    const first = th.dataset.first === "desc" ? "descending" : "ascending";
    const next = current === null ? first : (current === "ascending" ? "descending" : "ascending");
    const sign = next === "ascending" ? 1 : -1;
    const body = table.tBodies[0];
    const rows = Array.from(body.rows).map(function (row, index) {
      return { row: row, index: index, key: key(row.cells[column], numeric) };
    });
    rows.sort(function (a, b) {
      if (a.key === null || b.key === null) {
        return a.key === b.key ? a.index - b.index : (a.key === null ? 1 : -1);
      }
      if (a.key < b.key) return -sign;
      if (a.key > b.key) return sign;
      return a.index - b.index;
    });
    rows.forEach(function (item) { body.appendChild(item.row); });
    table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", next);
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    Array.from(table.tHead.rows[0].cells).forEach(function (th, column) {
      if (th.querySelector("a")) return;  // a header that links elsewhere stays a link
      const button = document.createElement("button");
      button.type = "button";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () { sortBy(table, th, column); });
    });
  });
})();

// The page's only behaviour: pick the protocol x metric view, sort the leaderboards, open a cell's details.
// Every number is computed in Python (harness/table.py); nothing here does arithmetic on scores.
(function () {
  "use strict";
  var state = { protocol: null, metric: null, sortCol: null, sortDir: null };
  var protocolButtons = document.querySelectorAll("button[data-protocol]");
  var metricButtons = document.querySelectorAll("button[data-metric]");
  state.protocol = protocolButtons.length ? protocolButtons[0].dataset.protocol : null;
  state.metric = metricButtons.length ? metricButtons[0].dataset.metric : null;

  // The first order of each board is the table's own (registry order); keep it to fall back on.
  document.querySelectorAll("table.board tbody").forEach(function (body) {
    Array.prototype.forEach.call(body.rows, function (row, i) { row.dataset.index = i; });
  });

  function sortKey(row, col) {
    var cell = row.querySelector('[data-col="' + CSS.escape(col) + '"]');
    return cell ? cell.dataset.sort : "";
  }

  function sortBoard(table) {
    var heads = table.querySelectorAll("thead th[data-col]");
    heads.forEach(function (th) {
      th.setAttribute("aria-sort", th.dataset.col === state.sortCol ? state.sortDir : "none");
    });
    if (!state.sortCol) return;
    var body = table.tBodies[0];
    var sign = state.sortDir === "ascending" ? 1 : -1;
    var text = state.sortCol === "model";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var ka = sortKey(a, state.sortCol), kb = sortKey(b, state.sortCol);
      if (ka === "" || kb === "") {  // rows without a result go last, whatever the direction
        if (ka !== kb) return ka === "" ? 1 : -1;
      } else {
        var c = text ? ka.localeCompare(kb) : parseFloat(ka) - parseFloat(kb);
        if (c !== 0) return sign * c;
      }
      return a.dataset.index - b.dataset.index;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  function show() {
    document.querySelectorAll(".view").forEach(function (view) {
      view.hidden = !(view.dataset.protocol === state.protocol && view.dataset.metric === state.metric);
    });
    protocolButtons.forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.protocol === state.protocol));
      if (b.dataset.protocol === state.protocol) document.getElementById("protocol-about").textContent = b.title;
    });
    metricButtons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.metric === state.metric)); });
    document.querySelectorAll(".view:not([hidden]) table.board").forEach(sortBoard);
  }

  protocolButtons.forEach(function (b) {
    b.addEventListener("click", function () { state.protocol = b.dataset.protocol; show(); });
  });
  metricButtons.forEach(function (b) {
    b.addEventListener("click", function () { state.metric = b.dataset.metric; show(); });
  });

  document.querySelectorAll("table.board button.sort").forEach(function (button) {
    button.addEventListener("click", function () {
      var col = button.closest("th").dataset.col;
      if (state.sortCol === col) {
        state.sortDir = state.sortDir === "descending" ? "ascending" : "descending";
      } else {
        state.sortCol = col;
        state.sortDir = col === "model" ? "ascending" : "descending";
      }
      document.querySelectorAll(".view:not([hidden]) table.board").forEach(sortBoard);
    });
  });

  document.querySelectorAll("button[data-detail]").forEach(function (button) {
    button.addEventListener("click", function () {
      document.getElementById(button.dataset.detail).showModal();
    });
  });
  document.querySelectorAll("dialog.detail").forEach(function (dialog) {
    dialog.querySelector("button.close").addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("click", function (event) {  // a click on the backdrop (outside the box) closes it
      var r = dialog.getBoundingClientRect();
      if (event.clientX < r.left || event.clientX > r.right || event.clientY < r.top || event.clientY > r.bottom) {
        dialog.close();
      }
    });
  });

  show();
})();

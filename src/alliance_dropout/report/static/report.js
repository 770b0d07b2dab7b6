// The caseload table's controls: client search, therapist and tier filters, sortable columns
// and charts that open large. Filters and sort run on load (from the URL fragment, e.g.
// #therapist=T2&tier=high,medium&sort=client) and on change; the fragment is kept in step so
// an analyst can share a filtered, sorted link. The search text is read from the fragment (q=)
// but never written to it, so client ids stay out of the browser history.
// Inlined into the report and allowed by its hash in the CSP.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var table = document.getElementById("caseload");
  var tbody = table.tBodies[0];
  var select = document.getElementById("f-therapist");
  var search = document.getElementById("f-search");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name=tier]"));
  var rows = Array.prototype.slice.call(tbody.rows);
  var headers = Array.prototype.slice.call(table.querySelectorAll("th[data-sort]"));
  var count = document.getElementById("shown-count");
  var empty = document.getElementById("no-rows");
  // The first click on a column sorts this way; the next click reverses it.
  var FIRST = { rank: "asc", client: "asc", therapist: "asc", asof: "asc", risk: "desc" };
  var sort = { key: "rank", dir: "asc" };

  // Sort and search keys, read once from each row. Rows come ranked by risk, so the rank is
  // the risk order; "as of" sorts by date, then session number.
  function asOf(row) {
    var cell = row.querySelector("td.asof");
    var date = cell.querySelector("span");
    var session = /\d+/.exec(cell.firstChild ? cell.firstChild.textContent : "");
    return (date ? date.textContent : "") + " " + ("000000" + (session ? session[0] : "")).slice(-6);
  }
  var keys = rows.map(function (row) {
    var client = row.querySelector(".cid").textContent;
    var rank = parseInt(row.getAttribute("data-rank"), 10);
    return {
      row: row,
      rank: rank,
      client: client,
      search: client.toLowerCase(),
      therapist: row.getAttribute("data-therapist") || "",
      asof: asOf(row),
      risk: -rank
    };
  });
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  function compare(a, b) {
    var k = sort.key;
    var c = (k === "client" || k === "therapist" || k === "asof")
      ? collator.compare(a[k], b[k])
      : a[k] - b[k];
    if (sort.dir === "desc") { c = -c; }
    return c !== 0 ? c : a.rank - b.rank;  // ties keep the ranking order
  }

  function applySort() {
    var sorted = keys.slice().sort(compare);
    // Reorder off the page: moving rows of a live table restyles all their siblings each time.
    var next = tbody.nextSibling;
    table.removeChild(tbody);
    var frag = document.createDocumentFragment();
    sorted.forEach(function (k) { frag.appendChild(k.row); });
    tbody.appendChild(frag);
    table.insertBefore(tbody, next);
    headers.forEach(function (th) {
      var on = th.getAttribute("data-sort") === sort.key;
      if (on) {
        th.setAttribute("aria-sort", sort.dir === "asc" ? "ascending" : "descending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
  }

  function readFragment() {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    var therapist = params.get("therapist");
    if (therapist !== null && data.therapists.indexOf(therapist) >= 0) {
      select.value = therapist;
    }
    var tiers = params.get("tier");
    if (tiers !== null) {
      var wanted = tiers.split(",");
      boxes.forEach(function (b) { b.checked = wanted.indexOf(b.value) >= 0; });
    }
    var q = params.get("q");
    if (q !== null) { search.value = q; }
    var s = params.get("sort");
    if (s !== null) {
      var parts = s.split("-");
      if (FIRST.hasOwnProperty(parts[0])) {
        sort = { key: parts[0], dir: parts[1] === "desc" || parts[1] === "asc" ? parts[1] : FIRST[parts[0]] };
      }
    }
  }

  function writeFragment() {
    var params = new URLSearchParams();
    if (select.value) { params.set("therapist", select.value); }
    var on = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    if (on.length !== boxes.length) { params.set("tier", on.join(",")); }
    if (sort.key !== "rank" || sort.dir !== "asc") { params.set("sort", sort.key + "-" + sort.dir); }
    var text = params.toString();
    try {
      history.replaceState(null, "", text ? "#" + text : window.location.pathname);
    } catch (e) { /* some file:// contexts refuse; filtering still works */ }
  }

  function apply() {
    var therapist = select.value;
    var q = search.value.trim().toLowerCase();
    var tiers = {};
    boxes.forEach(function (b) { if (b.checked) { tiers[b.value] = true; } });
    var shown = 0;
    keys.forEach(function (k) {
      var row = k.row;
      var show = (!therapist || k.therapist === therapist) &&
        tiers[row.getAttribute("data-tier")] === true &&
        (!q || k.search.indexOf(q) >= 0);
      row.hidden = !show;
      if (show) { shown += 1; }
    });
    count.textContent = "Showing " + shown + " of " + data.n_clients + " clients";
    count.setAttribute("data-shown", String(shown));
    empty.hidden = shown !== 0;
  }

  // --- charts that open large -----------------------------------------------------------------
  var dialog = document.getElementById("chart-dialog");
  var dialogBody = document.getElementById("chart-dialog-body");

  function openChart(button) {
    var row = button.closest("tr");
    var client = row ? row.querySelector(".cid").textContent : "";
    var svg = button.querySelector("svg");
    if (!row || !svg || typeof dialog.showModal !== "function") { return; }
    var big = svg.cloneNode(true);
    big.removeAttribute("width");
    big.removeAttribute("height");
    big.setAttribute("class", "spark big");
    dialogBody.textContent = "";
    dialogBody.appendChild(big);
    var title = svg.querySelector("title");
    document.getElementById("chart-dialog-text").textContent = title ? title.textContent : "";
    var risk = row.querySelector(".pct");
    document.getElementById("chart-dialog-title").textContent =
      "Client " + client + " · therapist " +
      row.getAttribute("data-therapist") + " · risk " + (risk ? risk.textContent : "–") +
      " (" + row.getAttribute("data-tier") + ")";
    var reasons = row.querySelector("td.reasons");
    var holder = document.getElementById("chart-dialog-reasons");
    holder.textContent = "";
    if (reasons) { holder.appendChild(reasons.cloneNode(true)); }
    dialog.showModal();
  }

  readFragment();
  if (sort.key !== "rank" || sort.dir !== "asc") { applySort(); }  // rows come in rank order
  apply();
  // Marks that the filters ran (the browser test and any automation wait on it).
  table.setAttribute("data-filters-ready", "true");
  select.addEventListener("change", function () { apply(); writeFragment(); });
  boxes.forEach(function (b) {
    b.addEventListener("change", function () { apply(); writeFragment(); });
  });
  var pending = null;
  search.addEventListener("input", function () {
    // A short pause, so a long caseload is filtered once per burst of typing.
    if (pending !== null) { clearTimeout(pending); }
    pending = setTimeout(function () { pending = null; apply(); }, rows.length > 5000 ? 200 : 0);
  });
  headers.forEach(function (th) {
    th.querySelector("button").addEventListener("click", function () {
      var key = th.getAttribute("data-sort");
      var first = FIRST[key];
      var other = first === "asc" ? "desc" : "asc";
      sort = { key: key, dir: sort.key === key && sort.dir === first ? other : first };
      applySort();
      writeFragment();
    });
  });
  tbody.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.chartbtn") : null;
    if (button) { openChart(button); }
  });
  document.getElementById("chart-dialog-close").addEventListener("click", function () {
    dialog.close();
  });
  dialog.addEventListener("click", function (event) {
    if (event.target === dialog) { dialog.close(); }  // a click on the backdrop
  });
  window.addEventListener("hashchange", function () { readFragment(); applySort(); apply(); });
})();

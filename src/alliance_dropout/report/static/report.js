// The caseload filters. They run on load (from the URL fragment, e.g.
// #therapist=T2&tier=high,medium) and on change; the fragment is kept in step so an analyst
// can share a filtered link. Inlined into the report and allowed by its hash in the CSP.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var select = document.getElementById("f-therapist");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name=tier]"));
  var rows = Array.prototype.slice.call(document.querySelectorAll("#caseload tbody tr"));
  var count = document.getElementById("shown-count");
  var empty = document.getElementById("no-rows");

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
  }

  function writeFragment() {
    var params = new URLSearchParams();
    if (select.value) { params.set("therapist", select.value); }
    var on = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    if (on.length !== boxes.length) { params.set("tier", on.join(",")); }
    var text = params.toString();
    try {
      history.replaceState(null, "", text ? "#" + text : window.location.pathname);
    } catch (e) { /* some file:// contexts refuse; filtering still works */ }
  }

  function apply() {
    var therapist = select.value;
    var tiers = {};
    boxes.forEach(function (b) { if (b.checked) { tiers[b.value] = true; } });
    var shown = 0;
    rows.forEach(function (row) {
      var show = (!therapist || row.getAttribute("data-therapist") === therapist) &&
        tiers[row.getAttribute("data-tier")] === true;
      row.hidden = !show;
      if (show) { shown += 1; }
    });
    count.textContent = "Showing " + shown + " of " + data.n_clients + " clients";
    count.setAttribute("data-shown", String(shown));
    empty.hidden = shown !== 0;
  }

  readFragment();
  apply();
  // Marks that the filters ran (the browser test and any automation wait on it).
  document.getElementById("caseload").setAttribute("data-filters-ready", "true");
  select.addEventListener("change", function () { apply(); writeFragment(); });
  boxes.forEach(function (b) {
    b.addEventListener("change", function () { apply(); writeFragment(); });
  });
  window.addEventListener("hashchange", function () { readFragment(); apply(); });
})();

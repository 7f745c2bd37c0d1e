/* bulkref plan review page: filtering only. Without this script every row is visible.
   Inline in the page; the page's CSP admits this block by hash. The filter lives in the
   address (#filter=blocked&q=text, or ?action=blocked) so a view can be shared or bookmarked.
   A long plan starts with its unchanged rows hidden (body data-unchanged="hidden"); the
   "Show N unchanged" button, the unchanged chip or #unchanged=shown bring them back. */
(function () {
  "use strict";
  var ACTIONS = ["all", "create", "update", "unchanged", "blocked", "invalid"];
  var rows = Array.prototype.slice.call(document.querySelectorAll("tbody.r"));
  var chips = Array.prototype.slice.call(document.querySelectorAll(".chip[data-filter]"));
  var box = document.getElementById("q");
  var shown = document.getElementById("shown");
  var none = document.getElementById("none");
  var toggle = document.getElementById("unchanged");
  var unchangedStart = document.body.getAttribute("data-unchanged") === "hidden" ? "hidden" : "shown";

  document.getElementById("controls").hidden = false;

  function readState() {
    var query = new URLSearchParams(location.search);
    var hash = new URLSearchParams(location.hash.replace(/^#/, ""));
    // The hash wins: chips write it, while ?action= only sets where the page starts.
    var action = hash.get("filter") || hash.get("action") || query.get("action") || query.get("filter");
    var text = hash.has("q") ? hash.get("q") : (query.get("q") || "");
    var unchanged = hash.get("unchanged") || query.get("unchanged");
    return {
      action: ACTIONS.indexOf(action) >= 0 ? action : "all",
      text: text,
      unchanged: unchanged === "hidden" || unchanged === "shown" ? unchanged : unchangedStart
    };
  }

  function writeState(state) {
    var parts = [];
    if (state.action !== "all") parts.push("filter=" + encodeURIComponent(state.action));
    if (state.text) parts.push("q=" + encodeURIComponent(state.text));
    if (state.unchanged !== unchangedStart) parts.push("unchanged=" + state.unchanged);
    // replace, not assign: typing in the box should not fill the back button's history.
    location.replace("#" + parts.join("&"));
  }

  function apply(state) {
    var needle = state.text.trim().toLowerCase();
    var count = 0;
    var folded = 0;
    // Hidden unchanged rows stay out of "all" only: the unchanged chip shows them.
    var fold = state.unchanged === "hidden" && state.action === "all";
    rows.forEach(function (row) {
      var match = (state.action === "all" || row.getAttribute("data-action") === state.action) &&
        (!needle || row.getAttribute("data-search").indexOf(needle) >= 0);
      if (match && fold && row.getAttribute("data-action") === "unchanged") {
        match = false;
        folded += 1;
      }
      row.hidden = !match;
      if (match) count += 1;
    });
    toggle.textContent = state.unchanged === "hidden"
      ? "Show " + toggle.getAttribute("data-count") + " unchanged" : "Hide unchanged";
    toggle.setAttribute("aria-pressed", state.unchanged === "shown" ? "true" : "false");
    chips.forEach(function (chip) {
      var on = chip.getAttribute("data-filter") === state.action;
      chip.classList.toggle("active", on);
      chip.setAttribute("aria-current", on ? "true" : "false");
    });
    if (box.value !== state.text) box.value = state.text;
    var filtered = state.action !== "all" || needle || folded;
    shown.textContent = filtered
      ? "Showing " + count + " of " + rows.length + " rows" +
        (state.action !== "all" ? " \u00b7 " + state.action : "") + (needle ? " \u00b7 \u201c" + state.text + "\u201d" : "") +
        (folded ? " \u00b7 " + folded + " unchanged hidden" : "")
      : "Showing all " + rows.length + " " + (rows.length === 1 ? "row" : "rows");
    none.hidden = count > 0 || rows.length === 0;
    document.body.setAttribute("data-filter", state.action);
  }

  chips.forEach(function (chip) {
    chip.addEventListener("click", function (event) {
      event.preventDefault();
      var state = readState();
      var wanted = chip.getAttribute("data-filter");
      // A second click on the active chip clears it, as with most filter bars.
      state.action = state.action === wanted ? "all" : wanted;
      writeState(state);
      apply(state);
    });
  });
  box.addEventListener("input", function () {
    var state = readState();
    state.text = box.value;
    writeState(state);
    apply(state);
  });
  box.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { box.value = ""; box.dispatchEvent(new Event("input")); }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && document.activeElement !== box) { event.preventDefault(); box.focus(); }
  });
  function openAll(open) {
    rows.forEach(function (row) {
      if (row.hidden) return;
      row.querySelectorAll("details").forEach(function (d) { d.open = open; });
    });
  }
  toggle.addEventListener("click", function () {
    var state = readState();
    state.unchanged = state.unchanged === "hidden" ? "shown" : "hidden";
    writeState(state);
    apply(state);
  });
  document.getElementById("expand").addEventListener("click", function () { openAll(true); });
  document.getElementById("collapse").addEventListener("click", function () { openAll(false); });
  window.addEventListener("hashchange", function () { apply(readState()); });

  apply(readState());
})();

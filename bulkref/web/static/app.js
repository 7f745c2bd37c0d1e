// bulkref serve: the little the pages need beyond HTML forms. Every page works
// without it (forms post, links navigate); this adds drag and drop onto the
// file fields, and live progress by polling progress.json.
"use strict";

function dropZones() {
  document.querySelectorAll("[data-drop]").forEach(function (zone) {
    var input = zone.querySelector("input[type=file]");
    var shown = zone.querySelector("[data-drop-file]");
    function show() {
      shown.textContent = input.files.length ? input.files[0].name : "";
      zone.classList.toggle("has-file", input.files.length > 0);
    }
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        show();
      }
    });
  });
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return seconds + " s";
  var m = Math.floor(seconds / 60), s = seconds % 60;
  return m + " min " + (s < 10 ? "0" : "") + s + " s";
}

function progress() {
  var box = document.querySelector("[data-progress]");
  if (!box || box.getAttribute("data-live") !== "yes") return;
  var url = box.getAttribute("data-progress");
  function set(name, value) {
    var el = box.querySelector('[data-field="' + name + '"]');
    if (el) el.textContent = value;
  }
  function tick() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        set("done", p.done === undefined ? "0" : p.done.toLocaleString());
        set("total", p.total === null || p.total === undefined ? "?" : p.total.toLocaleString());
        set("rate", p.rate === null || p.rate === undefined ? "–" : p.rate);
        set("eta", duration(p.etaSeconds));
        set("state", p.state);
        set("phase", p.phase || "starting");
        var fill = box.querySelector("[data-fill]");
        if (fill && p.total) fill.style.width = Math.min(100, (100 * p.done) / p.total) + "%";
        Object.keys(p.counts || {}).forEach(function (k) {
          var el = box.querySelector('[data-count="' + k + '"]');
          if (el) el.textContent = p.counts[k];
        });
        var notes = box.querySelector("[data-notes]");
        if (notes && p.notes) {
          notes.replaceChildren();
          p.notes.forEach(function (n) {
            var li = document.createElement("li");
            li.textContent = n;
            notes.appendChild(li);
          });
        }
        if (["starting", "running", "stopping"].indexOf(p.state) >= 0) {
          setTimeout(tick, 400);
        } else {
          var download = box.getAttribute("data-download");
          if (download && p.state === "done") {
            // A browser may refuse a download nobody clicked for: the link is there at once.
            var link = box.querySelector("[data-when-done]");
            if (link) link.hidden = false;
            window.location.assign(download);
          }
          setTimeout(function () { window.location.reload(); }, download ? 600 : 0);
        }
      })
      .catch(function () { setTimeout(tick, 1500); });
  }
  tick();
}

// A form whose work takes a while (planning reads Partner Center) says so, and
// cannot be sent twice by an impatient second click.
function busyForms() {
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.textContent = form.getAttribute("data-busy");
        setTimeout(function () { button.disabled = true; }, 0);
      }
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  dropZones();
  progress();
  busyForms();
});

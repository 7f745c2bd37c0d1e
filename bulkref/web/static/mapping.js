// The mapping page: a live preview while the form is edited, and a field's value
// map shown again when its column changes. The page works without it: the
// Preview button sends the form and the page comes back with the preview.
"use strict";

(function () {
  var form = document.getElementById("mapping-form");
  if (!form) return;
  var box = document.getElementById("preview-box");
  var url = form.getAttribute("data-preview");
  var timer = null;
  var asked = 0;

  function refresh() {
    var mine = ++asked;
    box.setAttribute("aria-busy", "true");
    fetch(url, { method: "POST", body: new FormData(form), credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        if (mine !== asked) return; // an older answer than the one on its way
        var parsed = new DOMParser().parseFromString(html, "text/html");
        box.replaceChildren.apply(box, Array.prototype.slice.call(parsed.body.childNodes));
        box.setAttribute("data-version", String(mine));
      })
      .catch(function () {})
      .then(function () { if (mine === asked) box.removeAttribute("aria-busy"); });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 350);
  }

  // Only the control a field uses: its value input when it takes one value for every row.
  function showValueInputs() {
    form.querySelectorAll("select[data-source]").forEach(function (select) {
      var cell = select.parentNode;
      var value = cell.querySelector("[data-when=value]");
      if (value) value.hidden = select.value !== "value";
    });
  }

  form.addEventListener("input", later);
  form.addEventListener("change", function (e) {
    showValueInputs();
    if (e.target.matches("[data-restructure]")) {
      form.requestSubmit(document.getElementById("mapping-update"));
      return;
    }
    later();
  });
  showValueInputs();
})();

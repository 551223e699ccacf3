// The on-screen keypad of the PIN screen: digits go into the PIN field that had focus last;
// OK moves from the first field to the second, then submits. Without this script the fields
// work with any keyboard (the keypad stays hidden).
(function () {
  "use strict";
  var pad = document.querySelector("[data-keypad]");
  var form = document.getElementById("keypad-form");
  if (!pad || !form) { return; }
  var fields = Array.prototype.slice.call(form.querySelectorAll("[data-pin-field]"));
  var active = fields[0];
  function mark(field) {
    active = field;
    fields.forEach(function (f) { f.classList.toggle("active", f === field); });
  }
  fields.forEach(function (f) { f.addEventListener("focus", function () { mark(f); }); });
  mark(fields[0]);
  pad.hidden = false;
  pad.addEventListener("click", function (event) {
    var key = event.target.closest("[data-key]");
    if (!key) { return; }
    var value = key.getAttribute("data-key");
    var max = parseInt(active.getAttribute("maxlength") || "12", 10);
    if (value === "back") {
      active.value = active.value.slice(0, -1);
    } else if (value === "clear") {
      active.value = "";
    } else if (active.value.length < max) {
      active.value += value;
    }
    active.dispatchEvent(new Event("input", { bubbles: true }));
  });
  form.addEventListener("submit", function (event) {
    var index = fields.indexOf(active);
    if (event.submitter && event.submitter.id === "pin-ok" && index === 0 && fields[1].value === "" && fields[0].value !== "") {
      event.preventDefault();
      fields[1].focus();
      mark(fields[1]);
    }
  });
}());

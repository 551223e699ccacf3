// The stack viewer's slider: swap the image as the slider moves, without reloading the page.
// Without this script the same controls work as a form (the "Show" button).
(function () {
  "use strict";
  var image = document.getElementById("viewer-image");
  var slider = document.getElementById("slice");
  var windowSelect = document.getElementById("window");
  var caption = document.getElementById("slice-caption");
  if (!image || !slider || !windowSelect) { return; }
  var prefix = image.getAttribute("data-prefix");
  var altPattern = image.getAttribute("data-alt") || "";
  var count = Number(slider.max) + 1;
  var captionPattern = caption ? caption.textContent.replace(/\d+/, "{n}") : "";

  function show() {
    var n = Number(slider.value);
    image.src = prefix + n + ".png?window=" + encodeURIComponent(windowSelect.value);
    image.alt = altPattern.replace("{n}", String(n + 1));
    if (caption) {
      caption.textContent = captionPattern.replace("{n}", String(n + 1));
      slider.setAttribute("aria-valuetext", caption.textContent);
    }
    if (window.history && window.history.replaceState) {
      var url = new URL(window.location.href);
      url.searchParams.set("slice", String(n));
      url.searchParams.set("window", windowSelect.value);
      window.history.replaceState(null, "", url.toString());
    }
  }
  slider.addEventListener("input", show);
  windowSelect.addEventListener("change", show);
  image.addEventListener("wheel", function (event) {
    event.preventDefault();
    var next = Number(slider.value) + (event.deltaY > 0 ? 1 : -1);
    slider.value = String(Math.max(0, Math.min(count - 1, next)));
    show();
  }, { passive: false });
}());

// Small progressive enhancements for the console; every page works without this file.
(function () {
  "use strict";
  // Refuse oversized uploads before sending them (the server refuses them too, but only after the upload).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form.upload")) return;
    var max = parseInt(form.getAttribute("data-max-bytes") || "0", 10);
    var input = form.querySelector("input[type=file]");
    var warning = document.getElementById("size-error");
    if (max && input && input.files && input.files[0] && input.files[0].size > max) {
      event.preventDefault();
      if (warning) warning.hidden = false;
      return;
    }
    if (warning) warning.hidden = true;
  });
  // Live filters (hx-trigger "input changed" on a search box) only hear typing once htmx has bound them; on a
  // slow page what was typed before that would sit unsearched. Once everything has loaded, send it.
  window.addEventListener("load", function () {
    if (!window.htmx) return;
    document.querySelectorAll("form[hx-get] input[type=search]").forEach(function (box) {
      if (box.value !== box.defaultValue && box.form) window.htmx.trigger(box.form, "submit");
    });
  });
})();

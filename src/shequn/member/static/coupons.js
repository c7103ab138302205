/* Coupons H5: claim buttons (one Idempotency-Key per tap, reused only when the network failed) and the code form. */
(function () {
  "use strict";

  function claim(button) {
    if (button.dataset.busy === "1") return; // a double tap claims once
    button.dataset.busy = "1";
    button.disabled = true;
    var box = document.querySelector("[data-error]");
    if (box) box.hidden = true;
    button.dataset.key = button.dataset.key || window.shequn.newKey();
    window.shequn.api("POST", "/api/v1/m/coupons/" + button.dataset.claim + "/claim", {}, { key: button.dataset.key })
      .then(function () {
        delete button.dataset.key;
        var ok = document.querySelector("[data-claimed]");
        if (ok) ok.hidden = false;
        window.setTimeout(function () { window.location.reload(); }, 600);
      })
      .catch(function (err) {
        if (!err.network) delete button.dataset.key; // a refused claim is a new claim next time
        window.shequn.showError(err, button.closest("section"));
        button.disabled = false;
      })
      .finally(function () { button.dataset.busy = ""; });
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("[data-claim]");
    if (button) claim(button);
  });

  document.addEventListener("shequn:ok", function (ev) {
    if (ev.target.matches && ev.target.matches("[data-coupon-code]")) {
      window.setTimeout(function () { window.location.reload(); }, 600);
    }
  });
})();

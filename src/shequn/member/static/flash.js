/* Flash-sale page: countdown on the server's clock, live stock by polling, a double-tap-safe claim button
 * (one Idempotency-Key per tap sequence, reused on network retries), pay-by countdown, pre-registration. */
(function () {
  "use strict";
  var root = document.querySelector("[data-flash]");
  if (!root) return;
  var d = root.dataset;
  var offset = Date.parse(d.server) - Date.now(); // server time − device time
  var starts = Date.parse(d.starts), ends = Date.parse(d.ends);
  var claimBtn = root.querySelector("[data-claim]");
  var left = null;
  var claimKey = null; // reused until the server decides, so a double tap or a retry claims once
  var busy = false;

  function now() { return Date.now() + offset; }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function fmt(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h >= 24 ? Math.floor(h / 24) + "d " + pad(h % 24) : pad(h)) + ":" + pad(m) + ":" + pad(s % 60);
  }
  function key() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function tick() {
    var t = now();
    var label = root.querySelector("[data-phase-label]"), cd = root.querySelector("[data-countdown]");
    if (t < starts) { label.textContent = d.tStarts; cd.textContent = fmt(starts - t); }
    else if (t < ends) { label.textContent = d.tEnds; cd.textContent = fmt(ends - t); }
    else { label.textContent = d.tEnded; cd.textContent = ""; }
    if (claimBtn && !busy) claimBtn.disabled = !(t >= starts && t < ends && left !== 0);
    document.querySelectorAll("[data-ref]").forEach(function (li) {
      var out = li.querySelector("[data-pay-countdown]");
      if (li.dataset.state === "reserved") {
        var rest = Date.parse(li.dataset.expires) - t;
        out.textContent = rest > 0 ? fmt(rest) : d.tExpired;
      } else { out.textContent = ""; }
    });
  }

  function showStock(n, total) {
    left = n;
    var el = root.querySelector("[data-stock]");
    el.textContent = n > 0 ? d.tLeft.replace("{n}", n) : d.tSoldout;
    var bar = root.querySelector("[data-stock-bar]");
    if (bar && total) bar.style.width = Math.round(100 * n / total) + "%";
  }

  async function poll() {
    try {
      var res = await fetch("/api/v1/m/flash/" + d.sale + "/stock?ws=" + encodeURIComponent(d.ws), { headers: { Accept: "application/json" } });
      if (res.ok) { var s = await res.json(); showStock(s.left, s.stock); offset = Date.parse(s.server_time) - Date.now(); }
    } catch (e) { /* keep the last figure; the next poll retries */ }
  }

  function addReservation(r) {
    var list = document.querySelector("[data-reservation-list]");
    if (list.querySelector('[data-ref="' + r.ref + '"]')) return;
    var li = document.createElement("li");
    li.dataset.ref = r.ref; li.dataset.state = r.state; li.dataset.expires = r.expires_at;
    li.textContent = r.qty + " × · ¥" + (r.amount / 100).toFixed(2) + " · " + (r.state === "reserved" ? d.tReserved : r.state) + " ";
    var strong = document.createElement("strong"); strong.setAttribute("data-pay-countdown", "");
    li.appendChild(strong);
    list.prepend(li);
    document.querySelector("[data-reservations]").hidden = false;
  }

  function showError(err) {
    var box = document.querySelector("[data-error]");
    if (box) { box.textContent = err.message || String(err); box.hidden = false; }
  }

  if (claimBtn) {
    claimBtn.addEventListener("click", async function () {
      if (busy) return;
      busy = true; claimBtn.disabled = true; claimBtn.textContent = d.tClaiming;
      claimKey = claimKey || key();
      try {
        var out = await window.shequn.api("POST", "/api/v1/m/flash/" + d.sale + "/claim", { qty: 1 }, { key: claimKey });
        addReservation(out.reservation);
        claimKey = null;
      } catch (err) {
        if (!err.network) claimKey = null; // decided: the next tap is a new claim
        showError(err);
      } finally {
        busy = false; claimBtn.textContent = d.tClaim; poll();
      }
    });
  }

  var prereg = root.querySelector("[data-prereg]");
  if (prereg) {
    prereg.addEventListener("click", async function () {
      prereg.disabled = true;
      try { await window.shequn.api("POST", "/api/v1/m/flash/" + d.sale + "/preregister", {}); }
      catch (err) { prereg.disabled = false; showError(err); }
    });
  }

  var join = root.querySelector("[data-join]");
  if (join) {
    join.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      try {
        await window.shequn.api("POST", "/api/v1/m/flash/join", { workspace: d.ws, name: join.name.value });
        location.reload();
      } catch (err) { showError(err); }
    });
  }

  tick(); poll();
  setInterval(tick, 250);
  setInterval(poll, 2000);
})();

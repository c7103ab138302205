/* shequn lottery wheel: draws an SVG wheel from the page's state and spins it to the server's result.
 * The server decides every outcome (commit-reveal, see the verification page); this script only animates.
 * Each draw sends the member's next draw_no with one Idempotency-Key per draw: a retry after a network failure
 * replays the same draw instead of making a second one. No dependencies, no CDN.
 */
(function () {
  "use strict";
  var SVGNS = "http://www.w3.org/2000/svg";
  var COLORS = ["#f6c343", "#2e7d5b", "#e76f51", "#4a90d9", "#9b5de5", "#f4a261", "#43aa8b", "#d1495b"];

  function polar(r, deg) {
    var a = (deg - 90) * Math.PI / 180;
    return [r * Math.cos(a), r * Math.sin(a)];
  }

  function el(name, attrs, text) {
    var node = document.createElementNS(SVGNS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text;
    return node;
  }

  function buildWheel(svg, prizes) {
    var n = prizes.length, step = 360 / n;
    var group = el("g", { "class": "lot-rotor" });
    prizes.forEach(function (p, i) {
      var a0 = i * step, a1 = (i + 1) * step;
      var s = polar(100, a0), e = polar(100, a1);
      var large = step > 180 ? 1 : 0;
      var d = n === 1 ? "M -100 0 A 100 100 0 1 1 100 0 A 100 100 0 1 1 -100 0 Z"
        : "M 0 0 L " + s[0] + " " + s[1] + " A 100 100 0 " + large + " 1 " + e[0] + " " + e[1] + " Z";
      group.appendChild(el("path", { d: d, fill: COLORS[i % COLORS.length], stroke: "#fff", "stroke-width": "1.5", "data-slice": p.id }));
      var mid = a0 + step / 2, at = polar(64, mid);
      var label = el("text", { x: at[0], y: at[1], "text-anchor": "middle", "dominant-baseline": "middle",
        transform: "rotate(" + mid + " " + at[0] + " " + at[1] + ")", "class": "lot-label" }, p.name.slice(0, 8));
      group.appendChild(label);
    });
    group.appendChild(el("circle", { cx: 0, cy: 0, r: 14, fill: "#fff", stroke: "#ddd" }));
    svg.appendChild(group);
    return group;
  }

  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    var root = document.querySelector("[data-lottery]");
    var stateNode = document.querySelector("[data-state]");
    if (!root || !stateNode || !window.shequn) return;
    var state = JSON.parse(stateNode.textContent);
    var svg = root.querySelector("[data-wheel]");
    var rotor = buildWheel(svg, state.prizes);
    var turned = 0;
    var pending = null; // {draw_no, paid, key} of a draw whose reply was lost: retried as the same draw
    var buttons = root.querySelectorAll("[data-draw], [data-buy]");
    var result = root.querySelector("[data-result]");

    function setBusy(on) { buttons.forEach(function (b) { b.disabled = on; }); }

    function refresh(s) {
      state = s;
      var free = root.querySelector("[data-free-left]"), pts = root.querySelector("[data-points]");
      if (free) free.textContent = s.free_left;
      if (pts) pts.textContent = s.points;
    }

    function spinTo(prizeId, done) {
      var index = state.prizes.findIndex(function (p) { return p.id === prizeId; });
      var step = 360 / state.prizes.length;
      // Land the middle of the slice (with a little jitter inside it) under the pointer at the top.
      var target = 360 - (index * step + step / 2) + (Math.random() - 0.5) * step * 0.6;
      turned += 360 * 5 + ((target - turned) % 360 + 360) % 360;
      rotor.style.transition = "transform 3.2s cubic-bezier(.17,.67,.2,1)";
      rotor.style.transform = "rotate(" + turned + "deg)";
      var finished = false;
      function end() { if (!finished) { finished = true; done(); } }
      rotor.addEventListener("transitionend", end, { once: true });
      setTimeout(end, 3600); // reduced-motion browsers may skip the transition event
    }

    async function drawOnce(paid) {
      window.shequn.clearErrors(root);
      result.hidden = true;
      if (!pending || pending.paid !== paid) {
        pending = { draw_no: state.next_draw_no, paid: paid, key: window.shequn.newKey() };
      }
      setBusy(true);
      try {
        var data = await window.shequn.api("POST", "/api/v1/m/lottery/" + state.lottery_id + "/draw",
          { draw_no: pending.draw_no, pay_with_points: paid }, { key: pending.key });
        pending = null;
        spinTo(data.result.prize_id, function () {
          refresh(data.state);
          result.textContent = data.result.won ? (document.documentElement.lang === "en" ? "You won: " : "恭喜获得：") + data.result.prize_name
            : data.result.prize_name;
          result.dataset.prizeKind = data.result.prize_kind;
          result.hidden = false;
          setBusy(false);
          if (data.result.prize_kind === "physical") setTimeout(function () { window.location.reload(); }, 1500);
        });
      } catch (err) {
        if (!err.network) pending = null; // a refusal (no draws left, no points) is final; a lost reply is retried
        if (err.code === "lottery_bad_draw_no") { window.location.reload(); return; }
        window.shequn.showError(err, root);
        setBusy(false);
      }
    }

    var drawBtn = root.querySelector("[data-draw]"), buyBtn = root.querySelector("[data-buy]");
    if (drawBtn) drawBtn.addEventListener("click", function () { drawOnce(false); });
    if (buyBtn) buyBtn.addEventListener("click", function () { drawOnce(true); });
  });
})();

/* shequn review widget: "what other buyers say", for a brand's product page. One tag, no dependencies:
 *
 *   <script src="https://<shequn host>/mstatic/reviews-widget.js" data-workspace="<brand slug>"
 *           data-product="<SKU or product id>" [data-lang="zh-CN|en"] [data-target="#css-selector"] async></script>
 *
 * It reads the public, read-only review API of the host it was loaded from. Every piece of review text is set
 * with textContent (never innerHTML), so a review cannot run script on the shop's page.
 */
(function () {
  "use strict";

  var TEXT = {
    "zh-CN": { title: "买家评价", none: "还没有评价", more: "查看更多", recent: "最新", helpful: "最有用",
      verified: "已购买", reviews: "条评价", reply: "商家回复：", helpfulN: "有用 ", error: "评价加载失败", anon: "匿名用户", all: "全部" },
    en: { title: "Customer reviews", none: "No reviews yet", more: "Show more", recent: "Newest", helpful: "Most helpful",
      verified: "Verified purchase", reviews: "reviews", reply: "Brand reply: ", helpfulN: "Helpful ", error: "Reviews could not be loaded", anon: "Anonymous", all: "All" }
  };
  var STYLE = ".sqrw{font:14px/1.5 -apple-system,BlinkMacSystemFont,'PingFang SC','Microsoft YaHei',sans-serif;color:#1f2a24}" +
    ".sqrw h3{font-size:16px;margin:0 0 8px}.sqrw-sum{display:flex;gap:16px;align-items:center;margin-bottom:8px}" +
    ".sqrw-avg{font-size:32px;font-weight:600}.sqrw-bars{flex:1}.sqrw-bar{display:flex;gap:6px;align-items:center;font-size:12px;cursor:pointer;background:none;border:0;padding:0;width:100%}" +
    ".sqrw-bar i{flex:1;height:6px;background:#eee;border-radius:3px;overflow:hidden;display:block}.sqrw-bar b{display:block;height:100%;background:#f5a623}" +
    ".sqrw-bar[aria-pressed=true]{font-weight:600}.sqrw-sort{display:flex;gap:8px;margin:8px 0}.sqrw-sort button,.sqrw-more{border:1px solid #dde;background:#fff;border-radius:14px;padding:2px 10px;font:inherit;cursor:pointer}" +
    ".sqrw-sort button[aria-pressed=true]{border-color:#2f7d4f;color:#2f7d4f}.sqrw-item{border-top:1px solid #eee;padding:10px 0}" +
    ".sqrw-head{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}.sqrw-stars{color:#f5a623;letter-spacing:1px}.sqrw-muted{color:#6b7a71;font-size:12px}" +
    ".sqrw-badge{font-size:12px;color:#2f7d4f;background:#e8f2ec;border-radius:8px;padding:0 6px}.sqrw-body{white-space:pre-wrap;word-break:break-word;margin:4px 0}" +
    ".sqrw-photos{display:flex;gap:4px;flex-wrap:wrap}.sqrw-photos img{width:72px;height:72px;object-fit:cover;border-radius:4px}.sqrw-reply{background:#f5f7f5;padding:6px 8px;border-radius:6px;margin-top:4px}";

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }

  function stars(n) {
    var r = Math.max(0, Math.min(5, Math.round(Number(n) || 0)));
    return "★★★★★".slice(0, r) + "☆☆☆☆☆".slice(0, 5 - r);
  }

  function mount(script) {
    if (script.dataset.sqrwMounted) return;
    script.dataset.sqrwMounted = "1";
    var ws = script.dataset.workspace || "";
    var product = script.dataset.product || "";
    var lang = (script.dataset.lang || document.documentElement.lang || "zh-CN").toLowerCase().indexOf("en") === 0 ? "en" : "zh-CN";
    var T = TEXT[lang];
    var base = new URL(script.src, location.href).origin;
    var api = base + "/api/v1/public/" + encodeURIComponent(ws) + "/products/" + encodeURIComponent(product) + "/reviews";
    var target = script.dataset.target ? document.querySelector(script.dataset.target) : null;
    var root = el("div", "sqrw");
    root.setAttribute("data-shequn-reviews", "");
    if (target) target.appendChild(root); else script.parentNode.insertBefore(root, script.nextSibling);
    if (!document.getElementById("sqrw-style")) {
      var style = el("style");
      style.id = "sqrw-style";
      style.textContent = STYLE;
      document.head.appendChild(style);
    }
    var state = { sort: "recent", rating: null, offset: 0 };
    var list = el("div", "sqrw-list");
    var more = el("button", "sqrw-more", T.more);
    more.type = "button";
    more.hidden = true;
    var summaryBox = el("div");
    var sortBox = el("div", "sqrw-sort");
    root.appendChild(el("h3", "", T.title));
    root.appendChild(summaryBox);
    root.appendChild(sortBox);
    root.appendChild(list);
    root.appendChild(more);

    [["recent", T.recent], ["helpful", T.helpful]].forEach(function (pair) {
      var b = el("button", "", pair[1]);
      b.type = "button";
      b.dataset.sort = pair[0];
      b.addEventListener("click", function () { state.sort = pair[0]; load(true); });
      sortBox.appendChild(b);
    });
    more.addEventListener("click", function () { load(false); });

    function renderSummary(s) {
      summaryBox.textContent = "";
      var sum = el("div", "sqrw-sum");
      var left = el("div");
      left.appendChild(el("div", "sqrw-avg", s.count ? Number(s.average).toFixed(1) : "–"));
      left.appendChild(el("div", "sqrw-stars", stars(s.average)));
      left.appendChild(el("div", "sqrw-muted", s.count + " " + T.reviews));
      var bars = el("div", "sqrw-bars");
      for (var r = 5; r >= 1; r--) {
        var n = Number(s.distribution[String(r)] || 0);
        var row = el("button", "sqrw-bar");
        row.type = "button";
        row.setAttribute("aria-pressed", state.rating === r ? "true" : "false");
        row.appendChild(el("span", "", r + "★"));
        var track = el("i");
        var fill = el("b");
        fill.style.width = (s.count ? Math.round((100 * n) / s.count) : 0) + "%";
        track.appendChild(fill);
        row.appendChild(track);
        row.appendChild(el("span", "", n));
        (function (rating) {
          row.addEventListener("click", function () { state.rating = state.rating === rating ? null : rating; load(true); });
        })(r);
        bars.appendChild(row);
      }
      sum.appendChild(left);
      sum.appendChild(bars);
      summaryBox.appendChild(sum);
    }

    function renderItem(it) {
      var item = el("div", "sqrw-item");
      item.setAttribute("data-review", String(it.id));
      var head = el("div", "sqrw-head");
      head.appendChild(el("strong", "", it.author || T.anon));
      head.appendChild(el("span", "sqrw-stars", stars(it.rating)));
      if (it.verified_purchase) head.appendChild(el("span", "sqrw-badge", T.verified));
      head.appendChild(el("span", "sqrw-muted", String(it.created_at || "").slice(0, 10)));
      item.appendChild(head);
      if (it.body) item.appendChild(el("p", "sqrw-body", it.body));
      if (it.photos && it.photos.length) {
        var photos = el("div", "sqrw-photos");
        it.photos.forEach(function (p) {
          if (typeof p !== "string" || p.charAt(0) !== "/") return; // only this host's media paths
          var img = el("img");
          img.src = base + p;
          img.alt = "";
          img.loading = "lazy";
          photos.appendChild(img);
        });
        item.appendChild(photos);
      }
      if (it.reply) item.appendChild(el("div", "sqrw-reply", T.reply + it.reply));
      if (it.helpful) item.appendChild(el("div", "sqrw-muted", T.helpfulN + it.helpful));
      return item;
    }

    function load(reset) {
      if (reset) { state.offset = 0; list.textContent = ""; }
      sortBox.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-pressed", b.dataset.sort === state.sort ? "true" : "false"); });
      var url = api + "?limit=10&sort=" + state.sort + "&offset=" + state.offset + (state.rating ? "&rating=" + state.rating : "") +
        "&lang=" + encodeURIComponent(lang);
      fetch(url, { credentials: "omit" })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (data) {
          renderSummary(data.summary);
          if (!data.items.length && state.offset === 0) list.appendChild(el("p", "sqrw-muted", T.none));
          data.items.forEach(function (it) { list.appendChild(renderItem(it)); });
          state.offset = data.next_offset || 0;
          more.hidden = data.next_offset === null || data.next_offset === undefined;
          root.setAttribute("data-loaded", "true");
        })
        .catch(function () {
          list.textContent = "";
          list.appendChild(el("p", "sqrw-muted", T.error));
          root.setAttribute("data-loaded", "error");
        });
    }

    load(true);
  }

  var current = document.currentScript;
  if (current) mount(current);
  document.querySelectorAll("script[data-workspace][data-product]").forEach(function (s) {
    if (/reviews-widget\.js/.test(s.src)) mount(s);
  });
})();

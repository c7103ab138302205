/* UGC challenge H5: vote for entries (the server keeps one vote per entry and member, so a retry is safe) and
 * enter one of my posts. Counts update from the server's reply. */
(function () {
  "use strict";

  function root() { return document.getElementById("ch"); }
  function tr(name, params) {
    var text = root().getAttribute("data-t-" + name) || "";
    Object.keys(params || {}).forEach(function (k) { text = text.split("{" + k + "}").join(String(params[k])); });
    return text;
  }
  function base() { return "/api/v1/m/challenges/" + root().getAttribute("data-challenge"); }

  function vote(btn) {
    var entryId = btn.getAttribute("data-vote");
    btn.disabled = true;
    window.shequn.clearErrors();
    window.shequn.api("POST", base() + "/entries/" + entryId + "/vote", {}).then(function (out) {
      btn.textContent = tr("voted");
      var count = document.querySelector('[data-votes="' + entryId + '"]');
      if (count) count.textContent = count.textContent.replace(/\d+/, String(out.entry_votes));
      var left = document.querySelector("[data-votes-left]");
      if (left) left.textContent = tr("left", { n: out.votes_left });
    }).catch(function (err) {
      btn.disabled = false;
      window.shequn.showError(err);
    });
  }

  function enter(btn) {
    btn.disabled = true;
    window.shequn.clearErrors();
    window.shequn.api("POST", base() + "/entries", { post_id: Number(btn.getAttribute("data-enter")) }).then(function () {
      window.location.reload();
    }).catch(function (err) {
      btn.disabled = false;
      window.shequn.showError(err);
    });
  }

  document.addEventListener("click", function (ev) {
    var target = ev.target;
    if (!(target instanceof Element) || !root()) return;
    var v = target.closest("[data-vote]");
    if (v) { vote(v); return; }
    var e = target.closest("[data-enter]");
    if (e) enter(e);
  });
})();

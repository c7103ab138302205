/* Prize quiz H5: start (or resume) the attempt, one question at a time against the server's clock, every
 * answer stored as it is given, submit (automatically at zero), then the result and prize.
 * The countdown only shows the server's deadline: answers after it are refused by the server anyway. */
(function () {
  "use strict";

  var root, quizId, state = { questions: [], answers: {}, index: 0, deadline: 0, timer: null, done: false };

  function q(sel) { return document.querySelector(sel); }
  function tr(name, params) {
    var text = root.getAttribute("data-t-" + name) || "";
    Object.keys(params || {}).forEach(function (k) { text = text.split("{" + k + "}").join(String(params[k])); });
    return text;
  }
  function api(method, path, body) {
    return window.shequn.api(method, "/api/v1/m/quiz/" + quizId + path, body);
  }

  function tick() {
    var left = Math.max(0, Math.round((state.deadline - Date.now()) / 1000));
    var clock = q("[data-clock]");
    clock.textContent = tr("left") + " " + Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2);
    clock.classList.toggle("low", left <= 10);
    if (left <= 0 && !state.done) { submit(true); }
  }

  function show(i) {
    state.index = Math.max(0, Math.min(i, state.questions.length - 1));
    var item = state.questions[state.index];
    var multiple = item.kind === "multiple";
    q("[data-progress]").textContent = tr("progress", { i: state.index + 1, n: state.questions.length });
    q("[data-question]").textContent = item.text;
    q("[data-kind]").textContent = multiple ? tr("many") : tr("one");
    var box = q("[data-options]");
    box.textContent = "";
    var chosen = state.answers[item.id] || [];
    item.options.forEach(function (text, idx) {
      var label = document.createElement("label");
      label.className = "qz-opt";
      var input = document.createElement("input");
      input.type = multiple ? "checkbox" : "radio";
      input.name = "opt";
      input.value = String(idx);
      input.checked = chosen.indexOf(idx) >= 0;
      input.addEventListener("change", function () { choose(item); });
      var span = document.createElement("span");
      span.textContent = text;
      label.appendChild(input);
      label.appendChild(span);
      box.appendChild(label);
    });
    var last = state.index === state.questions.length - 1;
    q("[data-prev]").hidden = state.index === 0;
    q("[data-next]").hidden = last;
    q("[data-submit]").hidden = !last;
  }

  function choose(item) {
    var picked = [];
    document.querySelectorAll("[data-options] input").forEach(function (el) { if (el.checked) picked.push(Number(el.value)); });
    state.answers[item.id] = picked;
    if (!picked.length) return;
    // A fresh idempotency key per change: storing an answer again is harmless, and a replayed old reply must
    // never stand for a newer choice. Start and submit are safe to repeat on the server too.
    api("POST", "/answer", { question_id: item.id, choices: picked })
      .catch(function (err) {
        window.shequn.showError(err);
        if (err.code === "quiz_time_up" || err.code === "quiz_attempt_submitted") submit(true);
      });
  }

  function start() {
    window.shequn.clearErrors();
    api("POST", "/start", {}).then(function (out) {
      if (out.attempt.status === "submitted") { loadResult(); return; }
      state.questions = out.questions;
      state.deadline = Date.now() + out.attempt.remaining_s * 1000;
      q("[data-play]").hidden = false;
      var btn = q("[data-start]");
      if (btn) btn.remove();
      show(0);
      tick();
      state.timer = window.setInterval(tick, 500);
    }).catch(function (err) { window.shequn.showError(err); });
  }

  function submit(auto) {
    if (state.done) return;
    state.done = true;
    if (state.timer) window.clearInterval(state.timer);
    api("POST", "/submit", { answers: state.answers }).then(function (out) {
      if (auto) window.shequn.showError(new Error(tr("time-up")));
      renderResult(out);
    }).catch(function (err) { state.done = false; window.shequn.showError(err); });
  }

  function loadResult() {
    api("GET", "/result").then(renderResult).catch(function (err) { window.shequn.showError(err); });
  }

  function renderResult(out) {
    var a = out.attempt;
    q("[data-play]").hidden = true;
    q("[data-result]").hidden = false;
    var btn = q("[data-start]");
    if (btn) btn.remove();
    q("[data-score]").textContent = tr("score", { right: a.correct_count, total: a.total });
    var outcome = a.late ? tr("late") : a.won ? tr("won") + (a.win_rank ? " " + tr("won-rank", { n: a.win_rank }) : "")
      : a.passed ? (root.getAttribute("data-rule") === "random_k" && a.prize_status === "none" ? tr("wait") : tr("gone"))
      : tr("not");
    if (a.won && a.prize_status && a.prize_status !== "none") {
      outcome += " " + tr("prize", { s: root.getAttribute("data-t-ps-" + a.prize_status.replace("_", "-")) || a.prize_status });
    }
    q("[data-outcome]").textContent = outcome;
    var list = q("[data-review]");
    list.textContent = "";
    var hidden = false;
    out.review.forEach(function (item) {
      var li = document.createElement("li");
      var mark = item.right ? tr("right") : tr("wrong");
      var text = item.text + " — " + mark;
      if (item.correct.length) {
        text += " (" + item.correct.map(function (i) { return item.options[i]; }).join(" / ") + ")";
      } else { hidden = true; }
      li.textContent = text;
      list.appendChild(li);
    });
    var after = q("[data-after]");
    after.hidden = !hidden;
    after.textContent = tr("after");
  }

  document.addEventListener("DOMContentLoaded", function () {
    root = document.getElementById("qz");
    if (!root) return;
    quizId = root.getAttribute("data-quiz");
    var btn = q("[data-start]");
    if (btn) btn.addEventListener("click", start);
    q("[data-prev]").addEventListener("click", function () { show(state.index - 1); });
    q("[data-next]").addEventListener("click", function () { show(state.index + 1); });
    q("[data-submit]").addEventListener("click", function () { submit(false); });
    if (root.getAttribute("data-state") === "submitted") loadResult();
  });
})();

/* shequn member H5: a small JSON client for /api/v1/m/… and declarative forms. No dependencies, no CDN.
 *
 * shequn.api(method, url, body, {key}) → parsed JSON, or throws an Error carrying {status, code, message, details}.
 * Every state-changing call carries an Idempotency-Key: one per user action, reused when that same action is
 * retried after a network failure, so a flaky connection never doubles a join, a post or a registration.
 *
 * <form data-api="/api/v1/m/…" [data-method="POST"] [data-next="/m/ws/x/{id}"]> posts its fields as JSON;
 * on success it follows the reply's `next`, else data-next ({name} filled from the reply), else shows [data-ok].
 */
(function () {
  "use strict";

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function errorBox(scope) {
    return (scope && scope.querySelector("[data-error]")) || document.querySelector("[data-error]");
  }

  function showError(err, scope) {
    var box = errorBox(scope);
    if (box) { box.textContent = err.message || String(err); box.hidden = false; }
    var details = Array.isArray(err.details) ? err.details : [];
    details.forEach(function (d) {
      if (!d || !d.field || !scope) return;
      var input = scope.querySelector('[name="' + String(d.field).split(".").pop() + '"]');
      if (!input) return;
      var note = document.createElement("span");
      note.className = "m-field-error";
      note.textContent = d.message || d.code || "";
      input.insertAdjacentElement("afterend", note);
      input.setAttribute("aria-invalid", "true");
    });
  }

  function clearErrors(scope) {
    var box = errorBox(scope);
    if (box) { box.hidden = true; box.textContent = ""; }
    if (!scope) return;
    scope.querySelectorAll(".m-field-error").forEach(function (n) { n.remove(); });
    scope.querySelectorAll("[aria-invalid]").forEach(function (n) { n.removeAttribute("aria-invalid"); });
  }

  async function api(method, url, body, opts) {
    opts = opts || {};
    var headers = { "Accept": "application/json" };
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") {
      headers["Idempotency-Key"] = opts.key || newKey();
      if (body instanceof FormData) { init.body = body; } else { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body || {}); }
    }
    var res;
    try {
      res = await fetch(url, init);
    } catch (e) {
      var net = new Error(document.documentElement.lang === "en" ? "The network is unreliable, please try again" : "网络不太好，请稍后再试");
      net.network = true;
      throw net;
    }
    var text = await res.text();
    var data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!res.ok) {
      var err = new Error((data && data.message) || res.statusText || "error");
      err.status = res.status;
      err.code = data && data.code;
      err.details = data && data.details;
      throw err;
    }
    return data;
  }

  function formBody(form) {
    var out = {};
    new FormData(form).forEach(function (value, name) {
      if (value instanceof File) return;
      var input = form.elements.namedItem(name);
      var kind = input && input.type;
      if (kind === "number" || (input && input.dataset && input.dataset.type === "int")) {
        out[name] = value === "" ? null : Number(value);
      } else if (kind === "checkbox") {
        out[name] = true;
      } else {
        out[name] = value;
      }
    });
    form.querySelectorAll('input[type="checkbox"][name]').forEach(function (c) { if (!c.checked) out[c.name] = false; });
    return out;
  }

  function fill(template, data) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return data && data[k] != null ? encodeURIComponent(data[k]) : ""; });
  }

  async function submitForm(form) {
    if (form.dataset.busy === "1") return; // a double tap sends once
    form.dataset.busy = "1";
    var button = form.querySelector('[type="submit"]');
    if (button) button.disabled = true;
    clearErrors(form);
    form.dataset.key = form.dataset.key || newKey();
    try {
      var data = await api(form.dataset.method || "POST", form.dataset.api, formBody(form), { key: form.dataset.key });
      delete form.dataset.key;
      form.dispatchEvent(new CustomEvent("shequn:ok", { detail: data, bubbles: true }));
      var next = (data && data.next) || (form.dataset.next && fill(form.dataset.next, data));
      if (next) { window.location.assign(next); return; }
      var ok = form.querySelector("[data-ok]");
      if (ok) ok.hidden = false;
    } catch (err) {
      if (!err.network) delete form.dataset.key; // a refused action is a new action next time
      showError(err, form);
    } finally {
      form.dataset.busy = "";
      if (button) button.disabled = false;
    }
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    ev.preventDefault();
    submitForm(form);
  });

  window.shequn = { api: api, newKey: newKey, showError: showError, clearErrors: clearErrors, submitForm: submitForm };
})();

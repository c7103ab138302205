/* shequn member H5 — UGC: photo upload for posts and reviews, reactions. Builds DOM with textContent only. */
(function () {
  "use strict";

  function photosOf(form) {
    return Array.prototype.map.call(form.querySelectorAll("[data-photo-list] [data-sha]"), function (n) { return n.dataset.sha; });
  }

  async function upload(input) {
    var form = input.closest("form");
    var list = form.querySelector("[data-photo-list]");
    shequn.clearErrors(form);
    for (var i = 0; i < input.files.length; i++) {
      var fd = new FormData();
      fd.append("file", input.files[i]);
      try {
        var m = await shequn.api("POST", "/api/v1/m/media", fd);
        if (photosOf(form).indexOf(m.sha256) >= 0) continue;
        var img = document.createElement("img");
        img.src = m.url;
        img.alt = "";
        img.dataset.sha = m.sha256;
        img.title = "×";
        img.addEventListener("click", function () { this.remove(); });
        list.appendChild(img);
      } catch (err) {
        shequn.showError(err, form);
      }
    }
    input.value = "";
  }

  function fields(form) {
    var out = {};
    new FormData(form).forEach(function (value, name) {
      if (value instanceof File) return;
      out[name] = value;
    });
    if (out.rating !== undefined) out.rating = Number(out.rating);
    out.media = photosOf(form);
    return out;
  }

  async function compose(form) {
    if (form.dataset.busy === "1") return;
    form.dataset.busy = "1";
    var button = form.querySelector('[type="submit"]');
    if (button) button.disabled = true;
    shequn.clearErrors(form);
    form.dataset.key = form.dataset.key || shequn.newKey();
    try {
      var data = await shequn.api(form.dataset.method || "POST", form.dataset.api, fields(form), { key: form.dataset.key });
      delete form.dataset.key;
      if (form.dataset.next) { window.location.assign(form.dataset.next.replace("{id}", encodeURIComponent(data.id))); return; }
      var ok = form.querySelector("[data-ok]");
      if (ok) ok.hidden = false;
    } catch (err) {
      if (!err.network) delete form.dataset.key;
      shequn.showError(err, form);
    } finally {
      form.dataset.busy = "";
      if (button) button.disabled = false;
    }
  }

  // Capture phase: the composer handles its own submit (it carries photos), before m.js's generic handler.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-ugc-compose")) return;
    ev.preventDefault();
    ev.stopImmediatePropagation();
    compose(form);
  }, true);

  document.addEventListener("change", function (ev) {
    if (ev.target.matches && ev.target.matches("[data-photo-input]")) upload(ev.target);
  });

  document.addEventListener("click", async function (ev) {
    var chip = ev.target.closest && ev.target.closest(".ugc-chip");
    if (!chip || chip.disabled) return;
    var bar = chip.closest("[data-react]");
    var parts = bar.dataset.react.split(":");
    var on = chip.getAttribute("aria-pressed") !== "true";
    chip.disabled = true;
    try {
      var res = await shequn.api("POST", "/api/v1/m/reactions", { item_type: parts[0], item_id: Number(parts[1]), kind: chip.dataset.kind, on: on });
      bar.querySelectorAll(".ugc-chip").forEach(function (c) {
        var n = res.counts[c.dataset.kind] || 0;
        c.querySelector("[data-count]").textContent = n ? String(n) : "";
      });
      chip.setAttribute("aria-pressed", on ? "true" : "false");
    } catch (err) {
      shequn.showError(err, null);
    } finally {
      chip.disabled = false;
    }
  });
})();

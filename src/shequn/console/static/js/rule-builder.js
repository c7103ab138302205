// The segment rule builder: a visual editor for the rule JSON (audience/rules.py), with a live preview.
//
// The page works without this file (the JSON textarea is the form field). With it, the textarea is kept
// in sync with a tree of groups and conditions; every change is posted (debounced) to the preview
// endpoint, which answers with the count and sample members or with field errors whose paths
// ("rule.rules[1].value") are mapped back onto the offending condition.
(function () {
  "use strict";
  var mount = document.getElementById("rule-builder");
  var configEl = document.getElementById("rb-config");
  if (!mount || !configEl) return;
  var cfg = JSON.parse(configEl.textContent);
  var T = cfg.text;
  var form = mount.closest("form");
  var textarea = document.getElementById("rule-json");
  var jsonError = document.getElementById("rb-json-error");
  var previewBox = document.getElementById("rb-preview");
  var busy = document.getElementById("rb-busy");
  var csrfInput = form.querySelector("input[name=csrf]");
  var csrf = csrfInput ? csrfInput.value : "";
  var readonly = !!cfg.readonly;
  var fields = {};
  cfg.fields.forEach(function (f) { fields[f.name] = f; });
  var TYPES = ["attr", "tag", "purchase", "event", "segment"];
  var NO_VALUE = { is_set: 1, is_not_set: 1 };
  var DEBOUNCE_MS = 300;

  // --- the model: UI state (strings as typed), converted to and from the rule JSON ------------------

  function group(op, children) { return { kind: "group", op: op || "and", not: false, children: children || [] }; }

  function defaultOp(type) {
    return { string: "eq", number: "gte", date: "within_days", list: "contains" }[type] || cfg.ops[type][0];
  }

  function leaf(type) {
    var n = { kind: "leaf", type: type, not: false };
    if (type === "attr") { n.field = "total_spent"; n.op = "gte"; n.value = ""; n.value2 = ""; n.values = []; }
    if (type === "tag") { n.tag_id = cfg.tags && cfg.tags.length ? String(cfg.tags[0].id) : ""; n.op = "has"; n.value = ""; }
    if (type === "purchase") { n.scope = "order"; n.category = ""; n.product_id = ""; n.days = "90"; n.metric = "count"; n.op = "gte"; n.value = "1"; }
    if (type === "event") { n.event = ""; n.days = "30"; n.op = "gte"; n.value = "1"; }
    if (type === "segment") { n.segment_id = cfg.segments.length ? String(cfg.segments[0].id) : ""; n.op = "in"; }
    return n;
  }

  function str(v) { return v === null || v === undefined ? "" : String(v); }

  function fenToYuan(v) {
    if (typeof v !== "number" || !isFinite(v) || Math.floor(v) !== v) return str(v);
    var sign = v < 0 ? "-" : "";
    var abs = Math.abs(v);
    var cents = abs % 100;
    return sign + Math.floor(abs / 100) + (cents ? "." + (cents < 10 ? "0" : "") + cents : "").replace(/0$/, "");
  }

  // "199", "199.5", "1,299.00", "¥20" → fen; anything else is sent as typed so the server names the field.
  function yuanToFen(text) {
    var s = str(text).trim().replace(/[,，¥￥\s]/g, "");
    if (s === "") return null;
    var m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s);
    if (!m) return s;
    var frac = (m[3] || "") + "000";
    var fen = parseInt(m[2], 10) * 100 + parseInt(frac.slice(0, 2), 10) + (parseInt(frac.charAt(2), 10) >= 5 ? 1 : 0);
    return m[1] ? -fen : fen;
  }

  function toInt(text) {
    var s = str(text).trim();
    if (s === "") return null;
    return /^-?\d+$/.test(s) ? parseInt(s, 10) : s;
  }

  function toNumber(text) {
    var s = str(text).trim();
    if (s === "") return null;
    return /^-?\d+(\.\d+)?$/.test(s) ? parseFloat(s) : s;
  }

  function splitList(text) {
    return str(text).split(/[,，、;；\n]/).map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function fromJson(j) {
    var not = false;
    var original = j;
    while (j && typeof j === "object" && j.type === "not" && "rule" in j) { not = !not; j = j.rule; }
    var n;
    if (!j || typeof j !== "object" || Array.isArray(j)) {
      n = { kind: "leaf", type: "raw", json: original };
      return n;
    }
    if (j.type === "and" || j.type === "or") {
      n = group(j.type, Array.isArray(j.rules) ? j.rules.map(fromJson) : []);
    } else if (j.type === "attr" && fields[j.field]) {
      var f = fields[j.field];
      n = leaf("attr");
      n.field = j.field; n.op = str(j.op);
      var v = j.value;
      if (Array.isArray(v) && (n.op === "in" || n.op === "not_in")) {
        n.values = v.map(str); n.value = v.map(str).join(", ");
      } else if (Array.isArray(v) && n.op === "between") {
        n.value = f.money ? fenToYuan(v[0]) : str(v[0]); n.value2 = f.money ? fenToYuan(v[1]) : str(v[1]);
      } else {
        n.value = f.money ? fenToYuan(v) : str(v);
      }
    } else if (j.type === "tag") {
      n = leaf("tag"); n.tag_id = str(j.tag_id); n.op = str(j.op); n.value = str(j.value);
    } else if (j.type === "purchase") {
      n = leaf("purchase");
      n.scope = j.product_id != null ? "product" : (j.category != null ? "category" : "order");
      n.category = str(j.category); n.product_id = str(j.product_id); n.days = str(j.days);
      n.metric = j.metric === "amount" ? "amount" : "count"; n.op = str(j.op);
      n.value = n.metric === "amount" ? fenToYuan(j.value) : str(j.value);
    } else if (j.type === "event") {
      n = leaf("event"); n.event = str(j.event); n.days = str(j.days); n.op = str(j.op); n.value = str(j.value);
    } else if (j.type === "segment") {
      n = leaf("segment"); n.segment_id = str(j.segment_id); n.op = str(j.op);
    } else {
      return { kind: "leaf", type: "raw", json: original };
    }
    n.not = not;
    return n;
  }

  function leafJson(n) {
    var j;
    if (n.type === "raw") return n.json;
    if (n.type === "attr") {
      var f = fields[n.field];
      j = { type: "attr", field: n.field, op: n.op };
      if (!NO_VALUE[n.op]) {
        var num = f.money ? yuanToFen : toInt;
        if (n.op === "in" || n.op === "not_in") j.value = f.choices.length ? n.values.slice() : splitList(n.value);
        else if (n.op === "between") j.value = [num(n.value), num(n.value2)];
        else if (f.type === "number") j.value = num(n.value);
        else if (f.type === "date") j.value = toInt(n.value);
        else j.value = str(n.value).trim();
      }
    } else if (n.type === "tag") {
      j = { type: "tag", tag_id: toInt(n.tag_id), op: n.op };
      if (n.op === "weight_gte") j.value = toNumber(n.value);
    } else if (n.type === "purchase") {
      j = { type: "purchase" };
      if (n.scope === "category") j.category = str(n.category).trim();
      if (n.scope === "product") j.product_id = toInt(n.product_id);
      if (str(n.days).trim() !== "") j.days = toInt(n.days);
      j.metric = n.metric; j.op = n.op;
      j.value = n.metric === "amount" ? yuanToFen(n.value) : toInt(n.value);
    } else if (n.type === "event") {
      j = { type: "event", event: str(n.event).trim() };
      if (str(n.days).trim() !== "") j.days = toInt(n.days);
      j.op = n.op; j.value = toInt(n.value);
    } else {
      j = { type: "segment", segment_id: toInt(n.segment_id), op: n.op };
    }
    return j;
  }

  // Serialise, remembering which element each JSON path belongs to (for the server's field errors).
  var paths = {};
  function toJson(n, path) {
    var j;
    if (n.not) { paths[path] = n; path += ".rule"; }
    paths[path] = n;
    if (n.kind === "group") {
      j = { type: n.op, rules: n.children.map(function (c, i) { return toJson(c, path + ".rules[" + i + "]"); }) };
    } else {
      j = leafJson(n);
    }
    return n.not ? { type: "not", rule: j } : j;
  }

  var state;
  function load(json) {
    var n = fromJson(json);
    state = n.kind === "group" ? n : group("and", [n]);
  }

  function serialize() {
    paths = {};
    return toJson(state, "rule");
  }

  // --- rendering ------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "className") e.className = attrs[k];
      else if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    if (readonly && /^(INPUT|SELECT|BUTTON|TEXTAREA)$/.test(e.tagName)) e.disabled = true;
    return e;
  }

  function select(key, options, value, label) {
    var s = el("select", { "data-key": key, "aria-label": label || key });
    var found = false;
    options.forEach(function (o) {
      var opt = el("option", { value: o.value, text: o.label });
      if (String(o.value) === String(value)) { opt.selected = true; found = true; }
      s.appendChild(opt);
    });
    if (!found && value !== "" && value !== undefined) {
      var extra = el("option", { value: value, text: String(value) });
      extra.selected = true;
      s.appendChild(extra);
    }
    return s;
  }

  function input(key, value, opts) {
    opts = opts || {};
    return el("input", {
      type: opts.type || "text",
      "data-key": key,
      value: value,
      className: opts.className || "rb-text",
      placeholder: opts.placeholder || null,
      inputmode: opts.inputmode || null,
      list: opts.list || null,
      min: opts.min || null,
      "aria-label": opts.label || key,
    });
  }

  function word(text, cls) { return el("span", { className: cls || "rb-word", text: text }); }

  function opOptions(context, ops) {
    return ops.map(function (o) { return { value: o, label: cfg.op_labels[context][o] || o }; });
  }

  function datalist(id, values) {
    if (document.getElementById(id)) return null;
    var d = el("datalist", { id: id });
    values.forEach(function (v) { d.appendChild(el("option", { value: v })); });
    return d;
  }

  function notToggle(n) {
    var box = el("input", { type: "checkbox", "data-key": "not" });
    box.checked = !!n.not;
    return el("label", { className: "rb-not" + (n.not ? " on" : ""), title: T.not }, [box, word(T.not, "")]);
  }

  function removeButton() {
    return el("button", { type: "button", className: "rb-remove", "data-act": "remove", text: "×", "aria-label": T.remove, title: T.remove });
  }

  function attrControls(n) {
    var f = fields[n.field] || cfg.fields[0];
    var out = [
      select("field", cfg.fields.map(function (x) { return { value: x.name, label: x.label }; }), n.field, T.condition),
      select("op", opOptions(f.type, cfg.ops[f.type]), n.op),
    ];
    if (NO_VALUE[n.op]) return out;
    var money = f.money;
    var numOpts = { className: "rb-num", inputmode: money ? "decimal" : "numeric", label: T.value };
    if ((n.op === "in" || n.op === "not_in") && f.choices.length) {
      var box = el("span", { className: "rb-choices", "data-key": "value", role: "group", "aria-label": T.value });
      f.choices.forEach(function (c) {
        var cb = el("input", { type: "checkbox", "data-key": "values", value: c.value });
        cb.checked = n.values.indexOf(c.value) >= 0;
        box.appendChild(el("label", {}, [cb, word(c.label, "")]));
      });
      out.push(box);
    } else if (f.choices.length) {
      out.push(select("value", [{ value: "", label: T.choose }].concat(f.choices), n.value, T.value));
    } else if (n.op === "in" || n.op === "not_in") {
      out.push(input("value", n.value, { placeholder: T.comma_hint, label: T.value, list: n.field === "city" ? "rb-cities" : null }));
    } else if (f.type === "list") {
      out.push(select("value", [{ value: "", label: T.choose }].concat(cfg.platforms), n.value, T.value));
    } else if (f.type === "date") {
      out.push(input("value", n.value, { className: "rb-days", inputmode: "numeric", label: T.days }), word(T.days, "rb-unit"));
    } else if (n.op === "between") {
      out.push(input("value", n.value, numOpts), word(T.to), input("value2", n.value2, numOpts));
      if (money) out.push(word(T.yuan, "rb-unit"));
    } else if (f.type === "number") {
      out.push(input("value", n.value, numOpts));
      if (money) out.push(word(T.yuan, "rb-unit"));
    } else {
      out.push(input("value", n.value, { label: T.value, list: n.field === "city" ? "rb-cities" : null }));
    }
    return out;
  }

  function tagControls(n) {
    var out = [];
    if (cfg.tags) {
      var opts = cfg.tags.map(function (t) { return { value: String(t.id), label: t.name }; });
      if (!opts.length) opts = [{ value: "", label: T.no_tags }];
      out.push(select("tag_id", opts, n.tag_id, T.tag_id));
    } else {
      out.push(input("tag_id", n.tag_id, { className: "rb-num", inputmode: "numeric", placeholder: T.tag_id, label: T.tag_id }));
    }
    out.push(select("op", opOptions("tag", cfg.ops.tag), n.op));
    if (n.op === "weight_gte") out.push(input("value", n.value, { className: "rb-num", inputmode: "decimal", label: T.weight }));
    return out;
  }

  function windowControls(n) {
    return [word(T.in_last), input("days", n.days, { className: "rb-days", inputmode: "numeric", placeholder: T.any_time, label: T.days }), word(T.days, "rb-unit")];
  }

  function purchaseControls(n) {
    var out = [select("scope", ["order", "category", "product"].map(function (s) { return { value: s, label: T["scope." + s] }; }), n.scope)];
    if (n.scope === "category") out.push(input("category", n.category, { list: "rb-categories", label: T.category, placeholder: T.category }));
    if (n.scope === "product") out.push(input("product_id", n.product_id, { className: "rb-num", inputmode: "numeric", label: T.product_id, placeholder: T.product_id }));
    out = out.concat(windowControls(n));
    out.push(select("metric", ["count", "amount"].map(function (m) { return { value: m, label: T["metric." + m] }; }), n.metric));
    out.push(select("op", opOptions("count", cfg.ops.count), n.op));
    out.push(input("value", n.value, { className: "rb-num", inputmode: n.metric === "amount" ? "decimal" : "numeric", label: T.value }));
    if (n.metric === "amount") out.push(word(T.yuan, "rb-unit"));
    return out;
  }

  function eventControls(n) {
    return [input("event", n.event, { placeholder: T.event_name, label: T.event_name })]
      .concat(windowControls(n))
      .concat([select("op", opOptions("count", cfg.ops.count), n.op), input("value", n.value, { className: "rb-num", inputmode: "numeric", label: T.value })]);
  }

  function segmentControls(n) {
    var opts = cfg.segments.map(function (s) { return { value: String(s.id), label: s.name }; });
    if (!opts.length) opts = [{ value: "", label: T.no_segments }];
    return [select("op", opOptions("segment", cfg.ops.segment), n.op), select("segment_id", opts, n.segment_id)];
  }

  function renderLeaf(n) {
    var row = el("div", { className: "rb-leaf" + (n.not ? " rb-negated" : ""), "data-type": n.type });
    row._node = n;
    n._el = row;
    row.appendChild(notToggle(n));
    if (n.type === "raw") {
      row.appendChild(el("code", { className: "rb-raw", text: JSON.stringify(n.json) }));
    } else {
      row.appendChild(select("type", TYPES.map(function (t) { return { value: t, label: cfg.types[t] }; }), n.type, T.condition));
      var controls = { attr: attrControls, tag: tagControls, purchase: purchaseControls, event: eventControls, segment: segmentControls }[n.type](n);
      controls.forEach(function (c) { row.appendChild(c); });
    }
    row.appendChild(el("span", { className: "rb-spacer" }));
    if (!readonly) row.appendChild(removeButton());
    row.appendChild(el("div", { className: "rb-errors", role: "alert" }));
    return row;
  }

  function renderGroup(n, isRoot) {
    var box = el("div", { className: "rb-group rb-" + n.op + (n.not ? " rb-negated" : ""), "data-type": "group" });
    box._node = n;
    n._el = box;
    var head = el("div", { className: "rb-group-head" }, [
      select("op", [{ value: "and", label: T.match_all }, { value: "or", label: T.match_any }], n.op, T.group),
      notToggle(n),
      el("span", { className: "rb-spacer" }),
    ]);
    if (!isRoot && !readonly) head.appendChild(removeButton());
    box.appendChild(head);
    box.appendChild(el("div", { className: "rb-errors", role: "alert" }));
    var kids = el("div", { className: "rb-children" });
    n.children.forEach(function (c) { kids.appendChild(c.kind === "group" ? renderGroup(c, false) : renderLeaf(c)); });
    box.appendChild(kids);
    if (!readonly) {
      box.appendChild(el("div", { className: "rb-add" }, [
        el("button", { type: "button", "data-act": "add-condition", text: "+ " + T.add_condition }),
        el("button", { type: "button", "data-act": "add-group", text: "+ " + T.add_group }),
      ]));
    }
    return box;
  }

  function render() {
    mount.textContent = "";
    mount.appendChild(renderGroup(state, true));
    [datalist("rb-cities", cfg.cities), datalist("rb-categories", cfg.categories)].forEach(function (d) { if (d) form.appendChild(d); });
    mount.setAttribute("data-ready", "1");
  }

  function rerender(n) {
    var old = n._el;
    var fresh = n.kind === "group" ? renderGroup(n, n === state) : renderLeaf(n);
    old.parentNode.replaceChild(fresh, old);
    var focus = fresh.querySelector("[data-key=" + (lastKey || "type") + "]");
    if (focus && focus.focus) focus.focus();
  }

  function parentOf(target, within) {
    within = within || state;
    if (within.kind !== "group") return null;
    for (var i = 0; i < within.children.length; i++) {
      if (within.children[i] === target) return within;
      var p = parentOf(target, within.children[i]);
      if (p) return p;
    }
    return null;
  }

  // --- events ---------------------------------------------------------------------------------

  var lastKey = null;
  function nodeOf(target) {
    var e = target.closest(".rb-leaf, .rb-group");
    return e ? e._node : null;
  }

  // Keys whose change alters which controls a condition shows.
  var STRUCTURAL = { type: 1, field: 1, op: 1, scope: 1, metric: 1, not: 1 };

  function onEdit(event) {
    var t = event.target;
    var key = t.getAttribute && t.getAttribute("data-key");
    var n = key ? nodeOf(t) : null;
    if (!n || readonly) return;
    // Selects and checkboxes are read on change, text boxes on input (each edit is handled once).
    var typing = t.tagName === "INPUT" && t.type !== "checkbox";
    if ((event.type === "input") !== typing) return;
    lastKey = key;
    if (key === "not") {
      n.not = t.checked;
      t.parentNode.classList.toggle("on", n.not);
      n._el.classList.toggle("rb-negated", n.not);
      changed();
      return;
    }
    if (n.kind === "group") {
      n.op = t.value;
      n._el.classList.toggle("rb-and", n.op === "and");
      n._el.classList.toggle("rb-or", n.op === "or");
      changed();
      return;
    }
    if (key === "values") {
      n.values = Array.prototype.map.call(n._el.querySelectorAll("input[data-key=values]:checked"), function (c) { return c.value; });
    } else if (key === "type") {
      var fresh = leaf(t.value);
      fresh.not = n.not;
      var p = parentOf(n);
      p.children[p.children.indexOf(n)] = fresh;
      fresh._el = n._el;
      n = fresh;
    } else if (key === "field") {
      var before = fields[n.field], after = fields[t.value];
      n.field = t.value;
      if (!before || before.type !== after.type || before.money !== after.money || before.choices.length || after.choices.length) {
        n.value = ""; n.value2 = ""; n.values = [];
      }
      if (cfg.ops[after.type].indexOf(n.op) < 0) n.op = defaultOp(after.type);
    } else if (key === "op") {
      var wasList = n.op === "in" || n.op === "not_in";
      n.op = t.value;
      if (wasList !== (n.op === "in" || n.op === "not_in") && n.type === "attr") {
        if (wasList && n.values.length) n.value = n.values[0];
        else if (!wasList && n.value) n.values = [n.value];
        if (wasList && !fields[n.field].choices.length) n.value = splitList(n.value)[0] || "";
      }
    } else if (key === "metric") {
      n.metric = t.value;
      n.value = "";
    } else {
      n[key] = t.value;
    }
    if (STRUCTURAL[key]) rerender(n);
    changed();
  }

  function onClick(event) {
    var b = event.target.closest("button[data-act]");
    if (!b || readonly) return;
    var n = nodeOf(b);
    var act = b.getAttribute("data-act");
    if (act === "remove") {
      var p = parentOf(n);
      if (!p) return;
      p.children.splice(p.children.indexOf(n), 1);
      n._el.parentNode.removeChild(n._el);
    } else if (act === "add-condition" || act === "add-group") {
      var child = act === "add-group" ? group(n.op === "and" ? "or" : "and", [leaf("attr")]) : leaf("attr");
      n.children.push(child);
      var kids = n._el.querySelector(":scope > .rb-children");
      kids.appendChild(child.kind === "group" ? renderGroup(child, false) : renderLeaf(child));
      var first = child._el.querySelector("select");
      if (first) first.focus();
    } else {
      return;
    }
    changed();
  }

  // --- sync with the JSON textarea and the preview ---------------------------------------------

  var timer = null;
  var seq = 0;
  var inflight = null;
  var fromTextarea = false;

  function changed() {
    var json = serialize();
    if (!fromTextarea && textarea) {
      textarea.value = JSON.stringify(json, null, 2);
      if (jsonError) jsonError.hidden = true;
    }
    schedule(json);
  }

  function schedule(json) {
    clearTimeout(timer);
    if (previewBox) previewBox.classList.add("stale");
    timer = setTimeout(function () { preview(json); }, DEBOUNCE_MS);
  }

  function clearErrors() {
    Array.prototype.forEach.call(mount.querySelectorAll(".rb-errors"), function (e) { e.textContent = ""; });
    Array.prototype.forEach.call(mount.querySelectorAll(".rb-invalid"), function (e) { e.classList.remove("rb-invalid"); });
    Array.prototype.forEach.call(mount.querySelectorAll(".rb-field-invalid"), function (e) {
      e.classList.remove("rb-field-invalid");
      e.removeAttribute("aria-invalid");
    });
  }

  // "rule.rules[1].value" → the condition registered at "rule.rules[1]", input data-key="value".
  function showErrors(errors) {
    clearErrors();
    errors.forEach(function (err) {
      var path = err.field || "rule";
      var rest = "";
      while (path && !paths[path]) {
        var cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
        if (cut <= 0) { path = ""; break; }
        rest = path.slice(cut) + rest;
        path = path.slice(0, cut);
      }
      var n = paths[path] || state;
      var box = n._el;
      if (!box) return;
      box.classList.add("rb-invalid");
      var slot = box.querySelector(":scope > .rb-errors");
      if (slot) slot.textContent = (slot.textContent ? slot.textContent + " · " : "") + err.message;
      var key = /^\.?([a-z_]+)/.exec(rest);
      if (key) {
        var scope = n.kind === "group" ? box.querySelector(":scope > .rb-group-head") : box;
        Array.prototype.forEach.call(scope ? scope.querySelectorAll("[data-key=" + key[1] + "]") : [], function (i) {
          i.classList.add("rb-field-invalid");
          i.setAttribute("aria-invalid", "true");
        });
      }
    });
  }

  function preview(json) {
    if (!previewBox) return;
    var mine = ++seq;
    if (inflight && inflight.abort) inflight.abort();
    inflight = window.AbortController ? new AbortController() : null;
    if (busy) busy.hidden = false;
    fetch(cfg.preview_url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "text/html" },
      body: JSON.stringify({ rule: json }),
      credentials: "same-origin",
      signal: inflight ? inflight.signal : undefined,
    })
      .then(function (r) {
        var redirect = r.headers.get("HX-Redirect");
        if (redirect) { window.location.href = redirect; return null; }
        return r.text();
      })
      .then(function (html) {
        if (html === null || mine !== seq) return;
        previewBox.innerHTML = html;
        previewBox.classList.remove("stale");
        if (busy) busy.hidden = true;
        var errors = Array.prototype.map.call(previewBox.querySelectorAll("[data-field]"), function (li) {
          var msg = li.querySelector(".msg");
          return { field: li.getAttribute("data-field"), message: (msg || li).textContent.trim() };
        });
        showErrors(errors);
        var count = previewBox.querySelector("#rb-count");
        mount.setAttribute("data-count", count ? count.getAttribute("data-count") : "");
      })
      .catch(function (e) {
        if (e && e.name === "AbortError") return;
        if (mine !== seq) return;
        if (busy) busy.hidden = true;
        previewBox.classList.remove("stale");
        previewBox.textContent = T.preview_failed || "";
      });
  }

  function onTextarea() {
    clearTimeout(timer);
    var parsed;
    try {
      parsed = JSON.parse(textarea.value);
    } catch (e) {
      if (jsonError) jsonError.hidden = false;
      return;
    }
    if (jsonError) jsonError.hidden = true;
    load(parsed);
    render();
    fromTextarea = true;
    try { changed(); } finally { fromTextarea = false; }
  }

  // --- start ----------------------------------------------------------------------------------

  var initial;
  try {
    initial = JSON.parse(textarea.value || "{}");
  } catch (e) {
    initial = { type: "and", rules: [] };
    if (jsonError) jsonError.hidden = false;
  }
  load(initial);
  render();
  var startJson = serialize();
  if (cfg.errors && cfg.errors.length) showErrors(cfg.errors);
  // Keep what the server sent when it is not valid JSON (so the person can fix it); otherwise normalise.
  if (jsonError && jsonError.hidden) textarea.value = JSON.stringify(startJson, null, 2);
  preview(startJson);

  mount.addEventListener("input", onEdit);
  mount.addEventListener("change", onEdit);
  mount.addEventListener("click", onClick);
  var textTimer = null;
  if (textarea && !readonly) {
    textarea.addEventListener("input", function () {
      clearTimeout(textTimer);
      textTimer = setTimeout(function () { textTimer = null; onTextarea(); }, DEBOUNCE_MS);
    });
  }
  form.addEventListener("submit", function () {
    // The textarea is the form field: apply a pending JSON edit, then save exactly what the builder shows.
    if (readonly) return;
    if (textTimer) { clearTimeout(textTimer); textTimer = null; onTextarea(); }
    if (!jsonError || jsonError.hidden) textarea.value = JSON.stringify(serialize(), null, 2);
  });
})();

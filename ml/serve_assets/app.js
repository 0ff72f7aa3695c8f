// pulmocalc teaching page. Every value shown is put into the DOM with textContent or
// setAttribute, never as HTML, so whatever a student types or a URL carries is shown as text.
"use strict";

const state = { findings: {}, setting: "default", focus: "", caseId: "", quiz: false, committed: false, answer: "" };
let schema = null;
let timer = null;
let sequence = 0;
window.pulmocalc = { updates: 0, errors: 0, last: null };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function pct(p) {
  if (p > 0 && p < 0.0005) return "<0.1%";
  if (p < 1 && p > 0.9995) return ">99.9%";
  return (100 * p).toFixed(1) + "%";
}

function signed(x) { return (x >= 0 ? "+" : "") + x.toFixed(2); }

function classLabel(name) {
  const c = schema.classes.find((k) => k.name === name);
  return c ? c.label : name;
}

// ---------------------------------------------------------------------------------------------
// URL state
// ---------------------------------------------------------------------------------------------
function readUrl() {
  const q = new URLSearchParams(window.location.search);
  const names = new Set(schema.columns.map((c) => c.name));
  for (const [k, v] of q.entries()) {
    if (names.has(k)) state.findings[k] = v;
  }
  state.setting = q.get("setting") || "default";
  state.focus = q.get("focus") || "";
  state.caseId = q.get("case") || "";
  state.quiz = q.get("quiz") === "1";
}

function writeUrl() {
  const q = new URLSearchParams();
  if (state.caseId) q.set("case", state.caseId);
  if (state.quiz) q.set("quiz", "1");
  if (state.setting && state.setting !== "default") q.set("setting", state.setting);
  if (state.focus) q.set("focus", state.focus);
  for (const c of schema.columns) {
    const v = state.findings[c.name];
    if (v !== undefined && v !== null && v !== "") q.set(c.name, String(v));
  }
  const s = q.toString();
  window.history.replaceState(null, "", s ? "?" + s : window.location.pathname);
}

// ---------------------------------------------------------------------------------------------
// Findings entry
// ---------------------------------------------------------------------------------------------
function buildForm() {
  const form = document.getElementById("findings");
  const groups = [];
  for (const c of schema.columns) if (!groups.includes(c.group)) groups.push(c.group);
  for (const g of groups) {
    const cols = schema.columns.filter((c) => c.group === g);
    const fs = el("fieldset", { class: "group", id: "group-" + g }, el("legend", { text: cols[0].group_label }));
    for (const c of cols) fs.append(fieldFor(c));
    form.append(fs);
  }
  form.addEventListener("submit", (ev) => ev.preventDefault());
}

function fieldFor(c) {
  const id = "f-" + c.name;
  if (c.kind === "binary") {
    const fs = el("fieldset", { class: "tri", id: id, title: c.description },
      el("legend", { text: c.label }));
    for (const [val, word] of [["1", "present"], ["0", "absent"], ["", "not recorded"]]) {
      const rid = id + "-" + (val === "" ? "na" : val);
      const input = el("input", { type: "radio", name: c.name, id: rid, value: val });
      input.addEventListener("change", () => setFinding(c.name, val));
      fs.append(el("span", { class: "opt" }, input, el("label", { for: rid, text: word })));
    }
    return fs;
  }
  const wrap = el("div", { class: "field" });
  const label = el("label", { for: id, text: c.label + (c.unit ? " (" + c.unit + ")" : "") });
  let input;
  if (c.kind === "categorical") {
    input = el("select", { id: id, name: c.name }, el("option", { value: "", text: "not recorded" }));
    for (const lv of c.levels) input.append(el("option", { value: lv, text: lv }));
    input.addEventListener("change", () => setFinding(c.name, input.value));
  } else {
    input = el("input", { type: "text", inputmode: "decimal", id: id, name: c.name, autocomplete: "off",
      placeholder: "not recorded", "aria-describedby": id + "-err" });
    input.addEventListener("input", () => setFinding(c.name, input.value.trim(), 350));
  }
  wrap.append(label, input, el("span", { class: "err", id: id + "-err" }));
  return wrap;
}

function applyStateToForm() {
  for (const c of schema.columns) {
    const v = state.findings[c.name];
    const s = v === undefined || v === null ? "" : String(v);
    if (c.kind === "binary") {
      const norm = s === "1" || s === "true" ? "1" : s === "0" || s === "false" ? "0" : "";
      const r = document.getElementById("f-" + c.name + "-" + (norm === "" ? "na" : norm));
      if (r) r.checked = true;
    } else {
      document.getElementById("f-" + c.name).value = s;
    }
  }
  document.getElementById("setting").value = state.setting;
  document.getElementById("focus").value = state.focus;
  document.getElementById("case-select").value = state.caseId;
  document.getElementById("quiz").checked = state.quiz;
}

function setFinding(name, value, delay) {
  if (value === "" || value === null) delete state.findings[name];
  else state.findings[name] = value;
  scheduleUpdate(delay === undefined ? 60 : delay);
}

// ---------------------------------------------------------------------------------------------
// Controls: setting, focus, case library, quiz
// ---------------------------------------------------------------------------------------------
function buildControls() {
  document.getElementById("disclaimer").textContent = schema.disclaimer;
  document.getElementById("paper").textContent = "Review: " + schema.paper;
  const setting = document.getElementById("setting");
  for (const s of schema.settings) setting.append(el("option", { value: s.name, text: s.label }));
  setting.addEventListener("change", () => { state.setting = setting.value; scheduleUpdate(0); });
  const focus = document.getElementById("focus");
  const answer = document.getElementById("quiz-answer");
  for (const k of schema.classes) {
    focus.append(el("option", { value: k.name, text: "rule in / rule out: " + k.label }));
    answer.append(el("option", { value: k.name, text: k.label }));
  }
  focus.addEventListener("change", () => { state.focus = focus.value; scheduleUpdate(0); });
  const sel = document.getElementById("case-select");
  const review = el("optgroup", { label: "The review's cases" });
  const published = el("optgroup", { label: "Published case reports" });
  for (const c of schema.cases) {
    (c.source ? published : review).append(el("option", { value: c.id, text: c.title }));
  }
  sel.append(review, published);
  document.getElementById("case-load").addEventListener("click", () => loadCase(sel.value));
  document.getElementById("quiz").addEventListener("change", (ev) => {
    state.quiz = ev.target.checked; state.committed = false; renderCase(); writeUrl(); renderVisibility();
  });
  document.getElementById("quiz-commit").addEventListener("click", () => {
    state.answer = answer.value;
    if (!state.answer) { answer.focus(); return; }
    state.committed = true; renderCase(); renderVisibility();
  });
  document.getElementById("clear").addEventListener("click", () => {
    state.findings = {}; state.caseId = ""; state.committed = false; applyStateToForm(); renderCase(); scheduleUpdate(0);
  });
  document.getElementById("copy-link").addEventListener("click", async () => {
    writeUrl();
    try { await navigator.clipboard.writeText(window.location.href); status("link copied"); }
    catch (e) { status("copy the address bar to share this case"); }
  });
}

function loadCase(id) {
  const c = schema.cases.find((x) => x.id === id);
  state.caseId = c ? c.id : "";
  state.findings = c ? Object.assign({}, c.findings) : {};
  state.committed = false;
  applyStateToForm();
  renderCase();
  scheduleUpdate(0);
}

function renderCase() {
  const c = schema.cases.find((x) => x.id === state.caseId);
  const cite = document.getElementById("case-citation");
  cite.replaceChildren();
  const dx = document.getElementById("case-diagnosis");
  const box = document.getElementById("quiz-box");
  if (!c) { dx.textContent = ""; box.hidden = true; return; }
  cite.append(document.createTextNode("Citation: " + c.citation + " "));
  if (c.source && /^https?:\/\//.test(c.source)) {
    cite.append(el("a", { href: c.source, rel: "noopener noreferrer", target: "_blank", text: "(source)" }));
  }
  const hide = state.quiz && !state.committed;
  box.hidden = !hide;
  if (hide) { dx.textContent = "Quiz: the authors' diagnosis is hidden until you commit to one."; return; }
  let text = "Authors' diagnosis: " + c.diagnosis_label;
  if (state.quiz && state.committed) {
    text = (state.answer === c.diagnosis ? "Correct. " : "Not quite: you chose " + classLabel(state.answer) + ". ") + text;
  }
  dx.textContent = text;
}

function renderVisibility() {
  const hide = state.quiz && !state.committed && !!state.caseId;
  document.getElementById("results").hidden = hide;
}

function status(text) { document.getElementById("status").textContent = text; }

// ---------------------------------------------------------------------------------------------
// Updates
// ---------------------------------------------------------------------------------------------
function scheduleUpdate(delay) {
  writeUrl();
  if (timer) clearTimeout(timer);
  timer = setTimeout(update, delay || 0);
}

async function update() {
  const mine = ++sequence;
  const body = JSON.stringify({ findings: state.findings, setting: state.setting, focus: state.focus || null });
  let resp, doc;
  try {
    resp = await fetch("/api/update", { method: "POST", headers: { "content-type": "application/json" }, body: body });
    doc = await resp.json();
  } catch (e) {
    showError({ error: "the server did not answer: " + e, field: null });
    return;
  }
  if (mine !== sequence) return; // a newer update is on its way
  if (!resp.ok) { showError(doc); window.pulmocalc.errors += 1; return; }
  clearErrors();
  render(doc);
  window.pulmocalc.last = doc;
  window.pulmocalc.updates += 1;
  status("updated");
}

function clearErrors() {
  document.getElementById("errors").replaceChildren();
  for (const e of document.querySelectorAll("[aria-invalid=true]")) e.removeAttribute("aria-invalid");
  for (const e of document.querySelectorAll(".err")) e.textContent = "";
}

function showError(doc) {
  clearErrors();
  document.getElementById("errors").append(el("p", { class: "error", text: doc.error }));
  if (doc.field) {
    const f = document.getElementById("f-" + doc.field);
    if (f) f.setAttribute("aria-invalid", "true");
    const e = document.getElementById("f-" + doc.field + "-err");
    if (e) e.textContent = doc.error;
  }
}

function bar(p, kind) {
  const fill = el("span", { class: "fill " + kind });
  fill.style.width = (100 * p).toFixed(2) + "%";
  return el("span", { class: "bar", role: "img", "aria-label": kind + " " + pct(p) }, fill);
}

function render(doc) {
  document.getElementById("setting-source").textContent = doc.prevalence_source;
  const tbody = document.querySelector("#differential tbody");
  tbody.replaceChildren();
  for (const d of doc.differential) {
    tbody.append(el("tr", { "data-class": d.name, "data-model": d.model, "data-oracle": d.oracle },
      el("th", { scope: "row", text: d.label }),
      el("td", {}, bar(d.model, "model"), el("span", { class: "num", text: pct(d.model) })),
      el("td", {}, bar(d.oracle, "oracle"), el("span", { class: "num", text: pct(d.oracle) }))));
  }
  renderNext(doc);
  renderReasons(doc);
  const dl = document.getElementById("table2");
  dl.replaceChildren(el("dt", { class: "lead", text: "Leading diagnosis (model)" }), el("dd", { text: doc.table2.label }));
  for (const it of doc.table2.items) dl.append(el("dt", { text: it.words }), el("dd", { text: it.text }));
  document.getElementById("table2-source").textContent = doc.table2.source;
  renderVisibility();
}

function renderNext(doc) {
  const ol = document.getElementById("next");
  ol.replaceChildren();
  for (const n of doc.next) {
    const head = doc.focus
      ? n.text + ": expected shift of " + classLabel(doc.focus) + " " + (100 * n.focus_shift).toFixed(1) +
        " points (now " + pct(n.focus_now) + "; rule out to " + pct(n.focus_min) + ", rule in to " + pct(n.focus_max) + ")"
      : n.text + ": " + n.gain_bits.toFixed(3) + " bits";
    const li = el("li", { "data-column": n.column, "data-gain": n.gain_bits }, el("span", { class: "next-head", text: head }));
    const outs = el("span", { class: "outcomes" });
    for (const o of n.outcomes) {
      const lead = Object.entries(o.posterior).sort((a, b) => b[1] - a[1])[0];
      const words = o.label + " (" + pct(o.probability) + ") → " + classLabel(lead[0]) + " " + pct(lead[1]);
      if (o.value !== null && o.value !== undefined) {
        const b = el("button", { type: "button", class: "set", text: "Set " + words,
          "aria-label": "Set " + n.text + " to " + o.label });
        b.addEventListener("click", () => {
          state.findings[n.column] = String(o.value);
          applyStateToForm();
          scheduleUpdate(0);
        });
        outs.append(b);
      } else {
        const b = el("button", { type: "button", class: "set", text: words + ": enter the value",
          "aria-label": "Enter " + n.text });
        b.addEventListener("click", () => document.getElementById("f-" + n.column).focus());
        outs.append(b);
      }
    }
    li.append(outs);
    ol.append(li);
  }
  if (!doc.next.length) ol.append(el("li", { text: "every finding is recorded" }));
}

function reasonRow(r) {
  const src = el("details", { class: "source" }, el("summary", { text: "source" }));
  const ul = el("ul");
  for (const s of r.sources) ul.append(el("li", { text: s }));
  if (!r.sources.length) ul.append(el("li", { text: "no knowledge-base number for this finding and type" }));
  src.append(ul);
  const role = r.role === "none" ? "" : (r.clue || r.role);
  return el("tr", { "data-column": r.column, "data-shap": r.shap, "data-woe": r.woe, class: r.unusual ? "unusual" : null },
    el("th", { scope: "row", text: r.text + ": " + r.value_text }),
    el("td", { class: "num", text: signed(r.shap) }),
    el("td", { class: "num", text: signed(r.woe) }),
    el("td", { text: (r.unusual ? "⚑ unusual — may suggest an alternate diagnosis. " : "") + role }),
    el("td", {}, src));
}

function renderReasons(doc) {
  const box = document.getElementById("reasons");
  box.replaceChildren();
  for (const c of doc.reasons) {
    const art = el("article", { class: "reasons", "data-class": c.name },
      el("h3", { text: c.label + " (model " + pct(c.model) + ", oracle " + pct(c.oracle) + ")" }));
    if (c.unusual.length) {
      const p = el("p", { class: "flag", role: "note", text: "⚑ Unusual for this type (Table 1: may suggest an alternate diagnosis): " +
        c.unusual.map((u) => u.text).join(", ") });
      art.append(p);
    }
    for (const [key, title] of [["for", "For"], ["against", "Against"]]) {
      const t = el("table", { class: "reason-table" },
        el("caption", { text: title }),
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Finding" }), el("th", { scope: "col", text: "Model SHAP" }),
          el("th", { scope: "col", text: "Oracle evidence" }), el("th", { scope: "col", text: "Table 1 role" }), el("th", { scope: "col", text: "Source" }))));
      const tb = el("tbody");
      for (const r of c[key]) tb.append(reasonRow(r));
      if (!c[key].length) tb.append(el("tr", {}, el("td", { colspan: 5, text: "none beyond 0.01 log-odds" })));
      t.append(tb);
      art.append(t);
    }
    box.append(art);
  }
}

async function init() {
  const resp = await fetch("/api/schema");
  schema = await resp.json();
  buildForm();
  buildControls();
  readUrl();
  if (state.caseId && Object.keys(state.findings).length === 0) {
    const c = schema.cases.find((x) => x.id === state.caseId);
    if (c) state.findings = Object.assign({}, c.findings);
  }
  if (!schema.cases.some((x) => x.id === state.caseId)) state.caseId = "";
  if (!schema.settings.some((s) => s.name === state.setting)) state.setting = "default";
  if (!schema.classes.some((k) => k.name === state.focus)) state.focus = "";
  applyStateToForm();
  renderCase();
  scheduleUpdate(0);
}

document.addEventListener("DOMContentLoaded", init);

// littlevision review: keyboard-first answers to the queues of /api/state. No framework, no CDN.
"use strict";

const S = { data: null, q: 0, i: 0, member: null, busy: false, where: {}, timings: [], split: [] };
window.reviewTimings = S.timings; // per-action milliseconds, key press to page updated
window.reviewSplit = S.split; // per action: [server work, answer received, page updated] ms

const $ = (sel) => document.querySelector(sel);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}
function thumbUrl(ref, size) {
  return `/thumb?where=${ref.now_where}&p=${encodeURIComponent(ref.now)}&s=${size}`;
}
function status(text, isError) {
  const s = $("#status");
  s.textContent = text;
  s.className = isError ? "error" : "";
}
const queue = () => S.data.queues[S.q];
const item = () => queue().items[S.i];
const doneLabel = (d) =>
  d.op === "keep" ? "kept" : d.op === "move" || d.op === "move_external" ? "quarantined" : `→ ${d.label}`;

async function api(method, url, body) {
  const r = await fetch(url, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await r.json().catch(() => ({ message: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(data.message || `HTTP ${r.status}`);
  return data;
}

function index() {
  S.where = {};
  S.data.queues.forEach((q, qi) => q.items.forEach((it, ii) => (S.where[it.key] = [qi, ii])));
}

function renderTabs() {
  const nav = $("#tabs");
  nav.replaceChildren();
  S.data.queues.forEach((q, qi) => {
    const p = S.data.progress[q.name];
    nav.append(
      el("button", { role: "tab", "aria-selected": String(qi === S.q), "data-queue": q.name,
                     onclick: () => selectQueue(qi) }, `${q.title} ${p.reviewed}/${p.total}`)
    );
  });
  const p = S.data.progress[queue().name];
  $("#progress").textContent = `${p.reviewed} of ${p.total} reviewed`;
}

function stripButton(it, ii) {
  const ref = it.files[it.target] || it.files[0];
  const b = el("button", { "data-key": it.key, title: it.title, onclick: () => select(ii) },
    el("img", { src: thumbUrl(ref, 160), loading: "lazy", alt: ref.path, width: 76, height: 76 }));
  markButton(b, it, ii);
  return b;
}
function markButton(b, it, ii) {
  b.classList.toggle("current", ii === S.i);
  b.classList.toggle("done", !!it.done);
  b.classList.toggle("quarantine", !!it.done && it.done.op.startsWith("move"));
  if (it.done) b.dataset.done = doneLabel(it.done); else delete b.dataset.done;
}

function renderStrip() {
  const strip = $("#strip");
  const frag = document.createDocumentFragment();
  queue().items.forEach((it, ii) => frag.append(stripButton(it, ii)));
  strip.replaceChildren(frag);
}
function refreshButton(key) {
  const pos = S.where[key];
  if (!pos || pos[0] !== S.q) return;
  const b = $("#strip").children[pos[1]];
  if (!b) return;
  const it = S.data.queues[pos[0]].items[pos[1]];
  const img = b.querySelector("img");
  const ref = it.files[it.target] || it.files[0];
  const url = thumbUrl(ref, 160);
  if (img.getAttribute("src") !== url) img.setAttribute("src", url);
  markButton(b, it, pos[1]);
}

function figure(ref, size, cls, onclick) {
  const caption = [ref.label ? `${ref.label}` : "unlabelled", ref.role, ref.now].filter(Boolean).join(" · ");
  return el("figure", { class: cls || null },
    el("img", { src: thumbUrl(ref, size), alt: ref.path, onclick: onclick || null }),
    el("figcaption", {}, caption));
}

function renderDetail() {
  const d = $("#detail");
  const it = item();
  if (!it) {
    d.replaceChildren(el("p", { class: "muted" }, "Nothing in this queue."));
    return;
  }
  const member = S.member ?? it.target;
  const head = el("h2", {},
    it.severity ? el("span", { class: `badge ${it.severity}` }, it.check) : null, it.title);
  const files = el("div", { class: "files" });
  it.files.forEach((ref, k) =>
    files.append(figure(ref, 480, k === member && it.files.length > 1 ? "target" : null,
      () => { S.member = k; renderDetail(); })));
  const acts = el("div", { class: "actions" });
  if (it.done) {
    const where = it.files[member] ? it.files[member].now : "";
    acts.append(el("p", { class: `answer ${it.done.op.startsWith("move") ? "quarantine" : ""}` },
      `Answered: ${doneLabel(it.done)} (${where}). Press u to undo.`));
  } else {
    S.data.classes.forEach((c, ci) =>
      acts.append(el("button", { class: c === it.suggested ? "suggested" : null, "data-class": c,
                                 onclick: () => act("relabel", c) },
        ci < 9 ? el("kbd", {}, String(ci + 1)) : null, ` ${c}`)));
    if (it.files[member] && it.files[member].where === "data")
      acts.append(el("button", { class: "keep", onclick: () => act("keep") }, el("kbd", {}, "k"), " keep"));
    acts.append(el("button", { class: "quarantine", onclick: () => act("quarantine") },
      el("kbd", {}, "q"), " quarantine"));
  }
  const parts = [head, files, acts];
  if (it.context.length) {
    const ctx = el("div", { class: "context" });
    it.context.forEach((ref) => ctx.append(figure(ref, 160)));
    parts.push(el("h3", {}, "Nearest images of each class"), ctx);
  }
  parts.push(el("div", { class: "gradcam", id: "gradcam" }));
  d.replaceChildren(...parts);
}

function render() {
  renderTabs();
  renderDetail();
  const b = $("#strip").children[S.i];
  if (b) b.scrollIntoView({ block: "nearest" });
}

function select(ii) {
  const n = queue().items.length;
  if (!n) return;
  const prev = S.i;
  S.i = Math.max(0, Math.min(n - 1, ii));
  S.member = null;
  const strip = $("#strip").children;
  if (strip[prev]) strip[prev].classList.remove("current");
  if (strip[S.i]) strip[S.i].classList.add("current");
  render();
}
function selectQueue(qi) {
  S.q = (qi + S.data.queues.length) % S.data.queues.length;
  const items = queue().items;
  const open = items.findIndex((it) => !it.done);
  S.i = open < 0 ? 0 : open;
  S.member = null;
  renderStrip();
  render();
}

function apply(answer) {
  for (const it of answer.items) {
    const pos = S.where[it.key];
    if (pos) S.data.queues[pos[0]].items[pos[1]] = it;
  }
  S.data.progress = answer.progress;
  S.data.classes = answer.classes;
  for (const it of answer.items) refreshButton(it.key);
}
function nextOpen() {
  const items = queue().items;
  for (let k = 1; k <= items.length; k++) {
    const j = (S.i + k) % items.length;
    if (!items[j].done) return j;
  }
  return S.i;
}

async function act(action, value) {
  const it = item();
  if (!it || S.busy) return;
  if (it.done) { status("Answered already: press u to undo first.", true); return; }
  const t0 = performance.now();
  S.busy = true;
  try {
    const member = S.member ?? it.target;
    const answer = await api("POST", "/api/act", { key: it.key, action, value: value ?? null, member });
    const t1 = performance.now();
    apply(answer);
    status(answer.message);
    select(nextOpen());
    const t2 = performance.now();
    S.timings.push(t2 - t0);
    S.split.push([answer.server_ms, t1 - t0, t2 - t0]);
  } catch (e) {
    status(e.message, true);
  } finally {
    S.busy = false;
  }
}

async function undo() {
  if (S.busy) return;
  const it = item();
  const t0 = performance.now();
  S.busy = true;
  try {
    const answer = await api("POST", "/api/undo", { key: it && it.done ? it.key : null });
    apply(answer);
    status(answer.message);
    const pos = S.where[answer.action.item];
    if (pos && pos[0] === S.q) select(pos[1]); else render();
    S.timings.push(performance.now() - t0);
  } catch (e) {
    status(e.message, true);
  } finally {
    S.busy = false;
  }
}

function gradcam() {
  const it = item();
  if (!it || !S.data.gradcam) { status("Grad-CAM needs a run: start the review with --run RUN.", true); return; }
  const ref = it.files[S.member ?? it.target];
  if (ref.now_where !== "data") return;
  $("#gradcam").replaceChildren(el("h3", {}, "Grad-CAM: where the model looked"),
    el("img", { src: `/api/gradcam?p=${encodeURIComponent(ref.now)}`, alt: "Grad-CAM" }));
}

document.addEventListener("keydown", (e) => {
  if (!S.data || e.ctrlKey || e.metaKey || e.altKey) return;
  const it = item();
  if (e.key >= "1" && e.key <= "9") {
    const c = S.data.classes[Number(e.key) - 1];
    if (c) act("relabel", c);
  } else if (e.key === "k") act("keep");
  else if (e.key === "q") act("quarantine");
  else if (e.key === "u") undo();
  else if (e.key === "g") gradcam();
  else if (e.key === "Enter" && it) {
    if (it.suggested) act("relabel", it.suggested); else act("keep");
  } else if (e.key === "ArrowRight" || e.key === "ArrowDown") select(S.i + 1);
  else if (e.key === "ArrowLeft" || e.key === "ArrowUp") select(S.i - 1);
  else if (e.key === "m" && it) { S.member = ((S.member ?? it.target) + 1) % it.files.length; renderDetail(); }
  else if (e.key === "Tab") selectQueue(S.q + (e.shiftKey ? -1 : 1));
  else return;
  e.preventDefault();
});

async function load() {
  try {
    S.data = await api("GET", "/api/state");
  } catch (e) {
    $("#detail").replaceChildren(el("p", { class: "error" }, e.message));
    return;
  }
  index();
  $("#data").textContent = S.data.data;
  const asked = S.data.queues.findIndex((q) => `#${q.name}` === location.hash);
  const first = asked >= 0 ? asked : S.data.queues.findIndex((q) => q.items.length);
  if (S.data.notes.length) status(S.data.notes.join(" "));
  selectQueue(first < 0 ? 0 : first);
  document.body.dataset.ready = "1";
}
load();

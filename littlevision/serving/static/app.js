// The littlevision web page: pick or drop an image, see the top classes and the Grad-CAM
// overlay, send a correction. Plain JS, no build step; every text from the server is set with
// textContent, never as HTML. URLs are relative so the page works behind a path prefix.
"use strict";

const $ = (id) => document.getElementById(id);
let current = null;  // the File being shown
let labels = [];  // the served model's classes

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function answer(response) {
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const message = (body && body.message) || `The service answered ${response.status}.`;
    throw new Error(message);
  }
  return body;
}

async function loadModel() {
  try {
    const m = await answer(await fetch("v1/model"));
    const served = m.run_version ? `version ${m.run_version} (${m.version})` : `version ${m.version}`;
    $("model").textContent = `${m.name} · ${served} · ${m.labels.length} classes`;
    labels = m.labels;
    const select = $("label");
    select.replaceChildren();
    for (const label of m.labels) {
      const option = document.createElement("option");
      option.value = label;
      option.textContent = label;
      select.append(option);
    }
  } catch (e) {
    $("model").textContent = `The model is not available: ${e.message}`;
  }
}

function renderClasses(probabilities) {
  const list = $("classes");
  list.replaceChildren();
  for (const [label, p] of Object.entries(probabilities)) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = label;
    name.title = label;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.display = "block";
    fill.style.width = `${(p * 100).toFixed(1)}%`;
    bar.append(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = `${(p * 100).toFixed(1)}%`;
    li.append(name, bar, pct);
    list.append(li);
  }
}

function form(file) {
  const data = new FormData();
  data.append("file", file);
  return data;
}

async function predict(file) {
  const result = await answer(await fetch("v1/predict?top_k=5", { method: "POST", body: form(file) }));
  renderClasses(result.probabilities);
  $("latency").textContent = `(${result.latency_ms.toFixed(1)} ms, model ${result.model.version})`;
  $("label").value = result.label;
  const unsure = result.unknown === true;
  $("unknown").hidden = !unsure;
  $("unknown").textContent = unsure
    ? `Not sure this is any of: ${labels.join(", ")} (novelty ${result.novelty.toFixed(3)}). ` +
      "If you know what it is, send the right label below."
    : "";
  $("feedback-title").textContent = unsure
    ? "Know what it is? Send the right label"
    : "Wrong? Send the right label";
  return result;
}

async function explain(file) {
  const overlay = $("overlay");
  const note = $("overlay-note");
  overlay.hidden = true;
  note.textContent = "Grad-CAM: working… (the first one loads TensorFlow and takes a while)";
  try {
    const result = await answer(await fetch("v1/explain?format=json", { method: "POST", body: form(file) }));
    overlay.src = `data:image/png;base64,${result.overlay_png_base64}`;
    overlay.hidden = false;
    note.textContent = `Grad-CAM: where the model looked for “${result.label}”`;
  } catch (e) {
    note.textContent = `Grad-CAM is not available: ${e.message}`;
  }
}

async function show(file) {
  if (!file) return;
  current = file;
  showError("");
  $("feedback-status").textContent = "";
  $("preview").src = URL.createObjectURL(file);
  $("classes").replaceChildren();
  $("result").hidden = false;
  try {
    await predict(file);
  } catch (e) {
    showError(e.message);
    $("result").hidden = true;
    return;
  }
  explain(file);
}

async function sendFeedback(event) {
  event.preventDefault();
  if (!current) return;
  const data = form(current);
  data.append("label", $("label").value);
  const headers = {};
  const key = $("apikey").value.trim();
  if (key) headers["X-API-Key"] = key;
  const status = $("feedback-status");
  status.textContent = "Sending…";
  try {
    const result = await answer(await fetch("v1/feedback", { method: "POST", body: data, headers }));
    status.textContent = result.saved
      ? `Thank you: saved as “${result.label}” for the next training.`
      : `Already saved as “${result.label}”.`;
  } catch (e) {
    status.textContent = `Not saved: ${e.message}`;
  }
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  show(e.dataTransfer.files[0]);
});
$("file").addEventListener("change", (e) => show(e.target.files[0]));
$("feedback").addEventListener("submit", sendFeedback);
loadModel();

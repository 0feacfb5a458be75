// somcolor's page: send a photo to POST /api/colorize, or a video to POST /api/jobs and
// poll GET /api/jobs/{id}; show the result and errors. No libraries, nothing external.
"use strict";

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let config = null;
let objectUrls = [];
let lastPhoto = null; // re-colorized when a setting changes
let lastJob = null; // our last video job: deleted before the next one starts
let run = 0; // each new file bumps it; older runs stop updating the page

function humanBytes(n) {
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]]) {
    if (n >= size) return `${+(n / size).toPrecision(3)} ${unit}`;
  }
  return `${n} bytes`;
}

function stem(name) {
  const base = (name || "upload").split(/[\\/]/).pop();
  const dot = base.lastIndexOf(".");
  return (dot > 0 ? base.slice(0, dot) : base).replace(/[^A-Za-z0-9._-]+/g, "_") || "upload";
}

function objectUrl(blob) {
  const url = URL.createObjectURL(blob);
  objectUrls.push(url);
  return url;
}

function setStatus(text) {
  $("status").textContent = text;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
  setStatus("");
}

function reset() {
  run += 1;
  $("error").hidden = true;
  $("photo-result").hidden = true;
  $("video-result").hidden = true;
  $("video-download").hidden = true;
  for (const id of ["before", "after"]) $(id).removeAttribute("src");
  for (const id of ["video-before", "video-after"]) $(id).removeAttribute("src");
  objectUrls.forEach((url) => URL.revokeObjectURL(url));
  objectUrls = [];
  return run;
}

async function refusal(resp) {
  // The server answers refusals as {"detail": "...", "code": "..."}.
  try {
    const body = await resp.json();
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    return { message: detail, code: body.code };
  } catch {
    return { message: `${resp.status} ${resp.statusText}`, code: null };
  }
}

function form(file, names) {
  const data = new FormData();
  data.append("file", file, file.name);
  for (const name of names) data.append(name, $(name).value);
  return data;
}

async function handle(file) {
  const mine = reset();
  lastPhoto = null;
  if (!file) return;
  if (config && file.size > config.limits.max_upload_bytes) {
    showError(`${file.name} is ${humanBytes(file.size)}; the limit is ` +
              `${humanBytes(config.limits.max_upload_bytes)}.`);
    return;
  }
  try {
    if (file.type.startsWith("video/")) await colorizeVideo(file, mine);
    else await colorizePhoto(file, mine);
  } catch (err) {
    if (mine === run) showError(`The server did not answer (${err.message}). Is it still running?`);
  }
}

async function colorizePhoto(file, mine) {
  setStatus(`Colorizing ${file.name}…`);
  const resp = await fetch("/api/colorize", { method: "POST", body: form(file, ["model", "decoder"]) });
  if (mine !== run) return;
  if (!resp.ok) {
    const err = await refusal(resp);
    if (err.code === "video_not_photo") return colorizeVideo(file, mine);
    return showError(err.message);
  }
  const blob = await resp.blob();
  if (mine !== run) return;
  lastPhoto = file;
  $("before").src = objectUrl(file);
  $("after").src = objectUrl(blob);
  $("download").href = $("after").src;
  $("download").download = `${stem(file.name)}_color.png`;
  $("photo-result").hidden = false;
  setStatus(`${file.name}: colorized in ${resp.headers.get("x-somcolor-seconds")} s.`);
}

async function colorizeVideo(file, mine) {
  if (!config.video.available) return showError(config.video.why_not);
  if (lastJob) {
    // The server counts stored results against its job limit: free ours first.
    const old = lastJob;
    lastJob = null;
    await fetch(`/api/jobs/${encodeURIComponent(old)}`, { method: "DELETE" }).catch(() => {});
  }
  setStatus(`Uploading ${file.name}…`);
  const body = form(file, ["model", "decoder", "smoothing"]);
  const resp = await fetch("/api/jobs", { method: "POST", body });
  if (mine !== run) return;
  if (!resp.ok) return showError((await refusal(resp)).message);
  let job = await resp.json();
  lastJob = job.id;
  $("video-before").src = objectUrl(file);
  $("video-result").hidden = false;
  while (job.state === "queued" || job.state === "running") {
    showProgress(job);
    await sleep(500);
    if (mine !== run) return;
    const r = await fetch(`/api/jobs/${encodeURIComponent(job.id)}`);
    if (mine !== run) return;
    if (!r.ok) return showError((await refusal(r)).message);
    job = await r.json();
  }
  if (job.state !== "done") return showError(job.error || `The job ${job.state}.`);
  showProgress(job);
  $("video-after").src = job.result_url;
  $("video-download").href = job.result_url;
  $("video-download").download = `${stem(file.name)}_color.mp4`;
  $("video-download").hidden = false;
  const minutes = Math.round((job.expires_in_s || 0) / 60);
  setStatus(`${file.name}: colorized in ${job.seconds} s. ` +
            `The result is kept on the server for about ${minutes} min.`);
}

function showProgress(job) {
  const bar = $("progress");
  if (job.progress === null) bar.removeAttribute("value"); // indeterminate
  else bar.value = job.progress;
  const of = job.frames_total ? ` of ${job.frames_total}` : "";
  $("progress-text").textContent = `${job.state}: ${job.frames_done}${of} frames`;
  setStatus(job.state === "done" ? "" : "Colorizing the video…");
}

function fill(select, options, chosen) {
  select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
  select.value = chosen;
}

function moveSplit() {
  const at = $("split").value;
  $("after").style.clipPath = `inset(0 0 0 ${at}%)`;
  $("divider").style.left = `${at}%`;
}

async function init() {
  const resp = await fetch("/api/config");
  config = await resp.json();
  fill($("model"), config.models.map((m) => [m.name, `${m.name} (${m.label})`]),
       config.default_model);
  const decoder = config.models.find((m) => m.name === config.default_model).decoder;
  fill($("decoder"), config.decoders.map((d) => [d, d]), decoder);
  $("smoothing").value = config.video.smoothing;
  $("smoothing-value").textContent = config.video.smoothing;
  const lim = config.limits;
  const mp = +(lim.max_pixels / 1e6).toPrecision(3);
  $("limits").textContent =
    `Photos (${lim.image_formats.join(", ")}) up to ${mp} megapixels; files up to ` +
    `${humanBytes(lim.max_upload_bytes)}. ` +
    (config.video.available ? "Videos become MP4." : "Videos are not available on this server.");
  $("version").textContent = `somcolor ${config.version}`;
}

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", () => handle($("file").files[0]));
  // A file dropped anywhere is taken, never opened by the browser instead of the page.
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  document.addEventListener("dragleave", (e) => {
    if (!e.relatedTarget) drop.classList.remove("over");
  });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    handle(e.dataTransfer.files[0]);
  });
  $("split").addEventListener("input", moveSplit);
  $("smoothing").addEventListener("input", () => {
    $("smoothing-value").textContent = $("smoothing").value;
  });
  for (const id of ["model", "decoder"]) {
    $(id).addEventListener("change", () => { if (lastPhoto) handle(lastPhoto); });
  }
  moveSplit();
}

wire();
init().catch((err) => showError(`Cannot reach the server (${err.message}).`));

// somcolor's page. A photo opens a hint session (POST /api/sessions) and its preview is
// redrawn with the hints after each change (POST /api/sessions/{id}/colorize); the
// full-size photo comes from POST /api/colorize with the same hints. A video goes to
// POST /api/jobs, polled at GET /api/jobs/{id}. No libraries, nothing external.
"use strict";

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let config = null;
let objectUrls = [];
let lastPhoto = null; // the photo shown: reopened when a setting or the reference changes
let lastVideo = null; // the video shown: run again when the reference changes
let lastJob = null; // our last video job: deleted before the next one starts
let run = 0; // each new file bumps it; older runs stop updating the page
let videoRun = 0; // the same for video jobs (editing a key frame leaves the job's going)
let videoStartedAt = 0; // performance.now() when the video job was asked for
let reference = null; // the reference photo (a File), or null
let startedAt = 0; // performance.now() when the user chose the file the page is working on
// Colour hints on a video's key frames: [{time, points}] for the video `of`; `editing`
// is the time of the frame open in the photo view, or null.
const keys = { of: null, list: [], editing: null };

// Hints, in the photo's own pixels: [{x, y, color}], the CLI's format.
const hints = {
  session: null, // the session's info from POST /api/sessions
  points: [],
  history: [], // earlier states {points, reference}, for undo
  selected: -1, // index of the hint the picker edits; -1: a new point (pending)
  pending: null, // {x, y} of a tapped point waiting for its colour
  busy: 0, // the run whose update is on its way (0: none)
  again: false, // the points changed while it was: send them once it is back
  changedAt: 0, // performance.now() of the change the next update answers
  previewUrl: null,
};
window.somcolorTimings = []; // ms from a change to its preview on screen
const SUGGESTIONS = 12; // colours the picker asks for (then the user's own)

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

function setStatus(text, state = "busy") {
  // state: "busy" (the user waits), "ready" (the result is shown) or "idle".
  $("status").textContent = text;
  $("status").dataset.state = text ? state : "idle";
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
  setStatus("");
  inView($("error"));
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

function inView(element) {
  // Unless most of it is in view already: scroll so that the element starts just below
  // the status bar (which stays at the top of the window).
  const rect = element.getBoundingClientRect();
  const top = $("status").offsetHeight;
  const visible = Math.min(rect.bottom, window.innerHeight) - Math.max(rect.top, top);
  if (visible >= 0.6 * Math.min(rect.height, window.innerHeight - top)) return;
  const reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  window.scrollBy({ top: rect.top - top - 8, behavior: reduce ? "auto" : "smooth" });
}

function reset(keepPhoto = false) {
  // keepPhoto: the same photo is opened again (another reference or setting), so its
  // last result stays on screen until the new one replaces it.
  run += 1;
  $("error").hidden = true;
  if (keys.editing === null) {
    videoRun += 1;
    $("video-result").hidden = true;
    $("video-download").hidden = true;
    $("cancel-job").hidden = true;
    for (const id of ["video-before", "video-after"]) $(id).removeAttribute("src");
  }
  if (!keepPhoto) {
    $("photo-result").hidden = true;
    for (const id of ["before", "after"]) $(id).removeAttribute("src");
    objectUrls.forEach((url) => URL.revokeObjectURL(url));
    objectUrls = [];
    hints.previewUrl = null;
  }
  closeSession();
  closePicker();
  return run;
}

function closeSession() {
  // The server holds a bounded number of sessions: free ours when we are done with it.
  if (hints.session) {
    const id = hints.session.id;
    hints.session = null;
    fetch(`/api/sessions/${encodeURIComponent(id)}`, { method: "DELETE", keepalive: true })
      .catch(() => {});
  }
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

function form(file, names, extra = {}) {
  const data = new FormData();
  data.append("file", file, file.name);
  for (const name of names) data.append(name, $(name).value);
  for (const [name, value] of Object.entries(extra)) data.append(name, value);
  if (reference) data.append("reference", reference, reference.name);
  return data;
}

async function handle(file, keepHints = false) {
  const mine = reset(keepHints && file === lastPhoto);
  startedAt = performance.now();
  lastPhoto = null;
  if (keys.editing === null) lastVideo = null; // (a key frame's photo keeps its video)
  if (!keepHints) setPoints([], false);
  if (!file) return;
  $("smoothing-row").hidden = !file.type.startsWith("video/");
  if (config && file.size > config.limits.max_upload_bytes) {
    showError(`${file.name} is ${humanBytes(file.size)}; the limit is ` +
              `${humanBytes(config.limits.max_upload_bytes)}.`);
    return;
  }
  try {
    if (file.type.startsWith("video/")) await colorizeVideo(file);
    else await colorizePhoto(file, mine);
  } catch (err) {
    if (mine === run) showError(`The server did not answer (${err.message}). Is it still running?`);
  }
}

async function colorizePhoto(file, mine) {
  setStatus(`Colorizing ${file.name}…`);
  const resp = await fetch("/api/sessions", { method: "POST", body: form(file, ["model", "decoder"]) });
  if (mine !== run) return;
  if (!resp.ok) {
    const err = await refusal(resp);
    if (err.code === "video_not_photo") return colorizeVideo(file);
    return showError(err.message);
  }
  const info = await resp.json();
  if (mine !== run) return closeSessionId(info.id);
  hints.session = info;
  lastPhoto = file;
  if (!$("before").src) $("before").src = objectUrl(file);
  $("download").dataset.name = `${stem(file.name)}_color.png`;
  const note = $("reference-note");
  note.hidden = !info.reference;
  note.textContent = info.reference
    ? `Coloured from the reference photo ${reference ? reference.name : info.reference}.` : "";
  hints.points = hints.points.filter((p) => p.x < info.width && p.y < info.height);
  drawMarks();
  $("photo-result").hidden = false;
  await update(mine, true);
}

function closeSessionId(id) {
  fetch(`/api/sessions/${encodeURIComponent(id)}`, { method: "DELETE" }).catch(() => {});
}

// ------------------------------------------------------------------ hints
function remember() {
  // Before an action: the state it changes (the hints and the reference), for undo.
  hints.history.push({ points: hints.points, reference });
}

function setPoints(points, keep = true) {
  if (keep) remember();
  else hints.history = [];
  hints.points = points;
  drawMarks();
  refreshTools();
}

function refreshTools() {
  // Undo takes back the last action, a hint's or the reference's; Clear removes both.
  $("undo").disabled = hints.history.length === 0;
  const hinted = hints.points.length > 0;
  $("clear").disabled = !hinted && !reference;
  $("clear").textContent = hinted && reference ? "Clear hints and reference"
    : reference ? "Clear the reference" : "Clear hints";
  $("download-hints").disabled = !hinted;
}

function change(points) {
  // Every edit of the hints goes through here: remembered for undo, then sent.
  setPoints(points);
  hints.changedAt = performance.now();
  update(run, false);
}

async function update(mine, first) {
  // One request at a time; changes made meanwhile are sent, all at once, when it is back.
  if (!hints.session) return;
  if (hints.busy === mine) {
    hints.again = true;
    return;
  }
  hints.busy = mine;
  hints.again = false;
  const started = hints.changedAt || performance.now();
  hints.changedAt = 0;
  const sent = hints.points.length;
  try {
    const resp = await fetch(`/api/sessions/${encodeURIComponent(hints.session.id)}/colorize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: hintsJson(),
    });
    if (mine !== run) return;
    if (!resp.ok) {
      const err = await refusal(resp);
      if (err.code === "session_expired" && lastPhoto) {
        // The server closed the session (unused too long, or to make room): open it again.
        hints.busy = 0;
        return handle(lastPhoto, true);
      }
      return showError(err.message);
    }
    const blob = await resp.blob();
    if (mine !== run) return;
    const url = objectUrl(blob);
    const img = $("after");
    img.src = url;
    await img.decode().catch(() => {});
    if (mine !== run) return;
    if (hints.previewUrl) URL.revokeObjectURL(hints.previewUrl);
    hints.previewUrl = url;
    $("error").hidden = true;
    const ms = performance.now() - started;
    if (!first) window.somcolorTimings.push(ms);
    const n = sent === 1 ? "1 hint" : `${sent} hints`;
    if (first) {
      // The time the user waited: from choosing the file to the result on screen.
      const opened = hints.session ? +hints.session.seconds : 0;
      const server = +resp.headers.get("x-somcolor-seconds") + opened;
      const from = reference ? ` with the colours of ${reference.name}` : "";
      setStatus(`Ready: ${lastPhoto.name} colorized${from} in ` +
                `${seconds(performance.now() - startedAt)} (server ${server.toFixed(2)} s). ` +
                "Tap the photo to give a point its colour.", "ready");
      inView($("photo-result"));
    } else {
      setStatus(`Ready: ${n}, updated in ${Math.round(ms)} ms.`, "ready");
      if (hints.selected < 0) inView($("stage"));
    }
  } catch (err) {
    if (mine === run) showError(`The server did not answer (${err.message}).`);
  } finally {
    if (hints.busy === mine) hints.busy = 0;
    if (mine === run && hints.again) update(mine, false);
  }
}

function hintsJson() {
  return JSON.stringify({ points: hints.points });
}

function atPointer(e) {
  // The photo's pixel under the pointer (the preview may be smaller than the photo).
  const rect = $("stage").getBoundingClientRect();
  const { width, height } = hints.session;
  const x = Math.round(((e.clientX - rect.left) / rect.width) * width - 0.5);
  const y = Math.round(((e.clientY - rect.top) / rect.height) * height - 0.5);
  return { x: Math.min(width - 1, Math.max(0, x)), y: Math.min(height - 1, Math.max(0, y)) };
}

function drawMarks() {
  const marks = $("marks");
  const s = hints.session;
  if (!s) return marks.replaceChildren();
  const all = hints.points.map((p, i) => ({ ...p, i }));
  if (hints.pending) all.push({ ...hints.pending, color: null, i: -1 });
  marks.replaceChildren(...all.map((p) => {
    const mark = document.createElement("button");
    mark.type = "button";
    mark.className = "mark";
    if (p.color === null) mark.classList.add("pending");
    if (p.i === hints.selected && !$("picker").hidden) mark.classList.add("selected");
    mark.dataset.index = p.i;
    mark.style.left = `${((p.x + 0.5) / s.width) * 100}%`;
    mark.style.top = `${((p.y + 0.5) / s.height) * 100}%`;
    mark.style.setProperty("--c", p.color || "transparent");
    mark.setAttribute("aria-label", p.color
      ? `hint ${p.i + 1} at ${p.x}, ${p.y}: ${p.color}` : `new hint at ${p.x}, ${p.y}`);
    return mark;
  }));
}

let drag = null; // {index, pointerId, startX, startY, moved, mark}

function onPointerDown(e) {
  if (!hints.session || e.button > 0) return;
  const mark = e.target.closest(".mark");
  drag = { index: mark ? +mark.dataset.index : null, id: e.pointerId, startX: e.clientX,
           startY: e.clientY, moved: false, mark };
  if (mark) {
    e.preventDefault();
    mark.setPointerCapture(e.pointerId);
  }
}

function onPointerMove(e) {
  if (!drag || e.pointerId !== drag.id || drag.mark === null) return;
  if (Math.hypot(e.clientX - drag.startX, e.clientY - drag.startY) > 6) drag.moved = true;
  if (!drag.moved || drag.index < 0) return;
  const at = atPointer(e);
  const s = hints.session;
  drag.mark.style.left = `${((at.x + 0.5) / s.width) * 100}%`;
  drag.mark.style.top = `${((at.y + 0.5) / s.height) * 100}%`;
  drag.at = at;
}

function onPointerUp(e) {
  if (!drag || e.pointerId !== drag.id) return;
  const d = drag;
  drag = null;
  const far = Math.hypot(e.clientX - d.startX, e.clientY - d.startY) > 10;
  if (d.mark && d.index >= 0 && d.moved && d.at) {
    // A hint was dragged: move it, keep its colour.
    const points = hints.points.map((p, i) => (i === d.index ? { ...p, x: d.at.x, y: d.at.y } : p));
    change(points);
    if (hints.selected === d.index) openPicker(d.index);
  } else if (d.mark) {
    if (d.index >= 0) openPicker(d.index);
  } else if (!far) {
    // A tap on the photo: a new point, whose colour the picker asks for.
    if (hints.points.length >= hints.session.max_hints) {
      return showError(`At most ${hints.session.max_hints} hints; remove one first.`);
    }
    hints.pending = atPointer(e);
    openPicker(-1);
  }
}

function onPointerCancel(e) {
  if (drag && e.pointerId === drag.id) {
    drag = null;
    drawMarks();
  }
}

function swatch(color, label) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "swatch";
  b.style.background = color;
  b.dataset.color = color;
  b.title = label;
  b.setAttribute("aria-label", label);
  return b;
}

function describe({ color, probability, source }) {
  if (source === "palette") return `${color}, from the palette`;
  return `${color}, the model's guess (${Math.round((probability || 0) * 100)}%)`;
}

function placePicker() {
  // Next to the point and wholly inside the window; on a phone a sheet at the bottom,
  // with the page scrolled so that the point stays above it.
  const picker = $("picker");
  if (picker.hidden) return;
  const at = hints.selected >= 0 ? hints.points[hints.selected] : hints.pending;
  if (!at || !hints.session) return;
  const stage = $("stage").getBoundingClientRect();
  const px = stage.left + ((at.x + 0.5) / hints.session.width) * stage.width;
  const py = stage.top + ((at.y + 0.5) / hints.session.height) * stage.height;
  const sheet = window.matchMedia("(max-width: 640px)").matches;
  picker.classList.toggle("sheet", sheet);
  const { innerWidth: W, innerHeight: H } = window;
  const box = picker.getBoundingClientRect();
  if (sheet) {
    picker.style.left = picker.style.top = "";
    document.body.style.paddingBottom = `${box.height + 16}px`;
    const free = H - box.height - 24;
    if (py > free || py < 0) window.scrollBy({ top: py - free / 2, behavior: "auto" });
    return;
  }
  const gap = 28, margin = 8;
  let left = px + gap;
  if (left + box.width > W - margin) left = px - gap - box.width;
  left = Math.min(Math.max(margin, left), W - box.width - margin);
  let top = py - box.height / 2;
  top = Math.min(Math.max(margin, top), H - box.height - margin);
  picker.style.left = `${left}px`;
  picker.style.top = `${top}px`;
}

function showRecent() {
  // The colours of the user's earlier hints, newest first, not already suggested.
  const shown = new Set([...$("suggestions").children].map((b) => b.dataset.color));
  const seen = new Set();
  const colors = [];
  for (const p of [...hints.points].reverse()) {
    if (!shown.has(p.color) && !seen.has(p.color)) colors.push(p.color);
    seen.add(p.color);
  }
  const box = $("recent");
  box.replaceChildren(...colors.slice(0, 6).map((c) => swatch(c, `${c}, one of your hints`)));
  box.hidden = colors.length === 0;
}

async function openPicker(index) {
  hints.selected = index;
  if (index >= 0) hints.pending = null;
  const at = index >= 0 ? hints.points[index] : hints.pending;
  $("picker").hidden = false;
  pickerTitle(index, at);
  if (index >= 0) $("custom").value = at.color;
  drawMarks();
  const box = $("suggestions");
  box.replaceChildren();
  showRecent();
  placePicker();
  box.setAttribute("aria-busy", "true");
  const mine = run;
  try {
    const resp = await fetch("/api/suggest", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ session: hints.session.id, x: at.x, y: at.y, k: SUGGESTIONS }),
    });
    if (mine !== run || hints.selected !== index) return;
    if (!resp.ok) {
      const err = await refusal(resp);
      if (err.code === "session_expired" && lastPhoto) return handle(lastPhoto, true);
      return showError(err.message);
    }
    const { colors } = await resp.json();
    box.replaceChildren(...colors.map((c) => swatch(c.color, describe(c))));
    showRecent();
    placePicker();
  } catch (err) {
    showError(`The server did not answer (${err.message}).`);
  } finally {
    box.removeAttribute("aria-busy");
  }
}

function pickerTitle(index, at) {
  $("remove-hint").hidden = index < 0;
  $("picker-title").textContent = index >= 0
    ? `Hint ${index + 1} at (${at.x}, ${at.y}): pick a new colour`
    : `Colour for the point (${at.x}, ${at.y}): the model's guesses first, then a palette`;
}

function closePicker() {
  $("picker").hidden = true;
  document.body.style.paddingBottom = "";
  hints.pending = null;
  hints.selected = -1;
  drawMarks();
}

function choose(color) {
  const i = hints.selected;
  let points;
  if (i >= 0) {
    points = hints.points.map((p, j) => (j === i ? { ...p, color } : p));
  } else if (hints.pending) {
    points = [...hints.points, { x: hints.pending.x, y: hints.pending.y, color }];
    hints.pending = null;
    hints.selected = points.length - 1;
    pickerTitle(hints.selected, points[hints.selected]); // now a hint: it can be removed
  } else {
    return;
  }
  change(points);
  $("custom").value = color;
}

function removeSelected() {
  const i = hints.selected;
  if (i < 0) return closePicker();
  closePicker();
  change(hints.points.filter((_, j) => j !== i));
}

function undo() {
  if (!hints.history.length) return;
  closePicker();
  const last = hints.history.pop();
  hints.points = last.points;
  drawMarks();
  refreshTools();
  if (last.reference !== reference) return setReference(last.reference, false);
  hints.changedAt = performance.now();
  update(run, false);
}

function clearAll() {
  // Clear: the hints and the reference, as one action (undo brings both back).
  closePicker();
  if (!reference) return change([]);
  setPoints([]);
  setReference(null, false);
}

function save(blob, name) {
  const a = document.createElement("a");
  a.href = objectUrl(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}

async function downloadPhoto() {
  // The full-size photo: POST /api/colorize with the hints, as `somcolor colorize --hints`.
  if (!lastPhoto) return;
  const mine = run;
  const button = $("download");
  button.disabled = true;
  setStatus("Colorizing the full-size photo…");
  try {
    const extra = hints.points.length ? { hints: hintsJson() } : {};
    const resp = await fetch("/api/colorize", {
      method: "POST", body: form(lastPhoto, ["model", "decoder"], extra),
    });
    if (mine !== run) return;
    if (!resp.ok) return showError((await refusal(resp)).message);
    save(await resp.blob(), button.dataset.name);
    setStatus(`${lastPhoto.name}: the full-size photo is downloaded.`);
  } catch (err) {
    if (mine === run) showError(`The server did not answer (${err.message}).`);
  } finally {
    button.disabled = false;
  }
}

function downloadHints() {
  const blob = new Blob([JSON.stringify({ points: hints.points }, null, 1) + "\n"],
                        { type: "application/json" });
  save(blob, `${stem(lastPhoto ? lastPhoto.name : "photo")}_hints.json`);
}

async function colorizeVideo(file) {
  if (!config.video.available) return showError(config.video.why_not);
  const mine = ++videoRun;
  videoStartedAt = startedAt;
  if (lastJob) {
    // The server counts stored results against its job limit: free ours first.
    const old = lastJob;
    lastJob = null;
    await fetch(`/api/jobs/${encodeURIComponent(old)}`, { method: "DELETE" }).catch(() => {});
  }
  setStatus(`Uploading ${file.name}…`);
  lastVideo = file;
  if (keys.of !== file) Object.assign(keys, { of: file, list: [], editing: null });
  showKeyframes();
  const extra = keys.list.length ? { hints: keysJson() } : {};
  const body = form(file, ["model", "decoder", "smoothing"], extra);
  // The original and the key frames stay in view even if the job is refused.
  $("video-before").src = objectUrl(file);
  $("video-result").hidden = false;
  const resp = await fetch("/api/jobs", { method: "POST", body });
  if (mine !== videoRun) return;
  if (!resp.ok) return showError((await refusal(resp)).message);
  let job = await resp.json();
  lastJob = job.id;
  $("cancel-job").hidden = false;
  inView($("video-result"));
  while (job.state === "queued" || job.state === "running") {
    showProgress(job);
    await sleep(500);
    if (mine !== videoRun) return;
    const r = await fetch(`/api/jobs/${encodeURIComponent(job.id)}`);
    if (mine !== videoRun) return;
    if (!r.ok) return showError((await refusal(r)).message);
    job = await r.json();
  }
  $("cancel-job").hidden = true;
  if (job.state !== "done") return showError(job.error || `The job ${job.state}.`);
  showProgress(job);
  $("video-after").src = job.result_url;
  $("video-download").href = job.result_url;
  $("video-download").download = `${stem(file.name)}_color.mp4`;
  $("video-download").hidden = false;
  const minutes = Math.round((job.expires_in_s || 0) / 60);
  const n = keys.list.length;
  const from = (reference ? ` with the colours of ${reference.name}` : "") +
    (n ? ` with hints on ${n} key frame${n > 1 ? "s" : ""}` : "");
  setStatus(`Ready: ${file.name} colorized${from} in ${seconds(performance.now() - videoStartedAt)} ` +
            `(server ${job.seconds} s). The result is kept on the server for about ` +
            `${minutes} min.`, "ready");
  inView($("video-result"));
}

// ------------------------------------------------------------------ key frames of a video
function keysJson() {
  return JSON.stringify({ keyframes: keys.list.map(({ time, points }) => ({ time, points })) });
}

function showKeyframes() {
  const list = $("keyframe-list");
  list.replaceChildren(...keys.list.map((k, i) => {
    const li = document.createElement("li");
    const edit = document.createElement("button");
    edit.type = "button";
    edit.className = "button secondary";
    edit.dataset.index = i;
    edit.dataset.action = "edit";
    const n = k.points.length;
    edit.textContent = `${k.time.toFixed(2)} s: ${n} hint${n === 1 ? "" : "s"}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button secondary";
    remove.dataset.index = i;
    remove.dataset.action = "remove";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `remove the key frame at ${k.time.toFixed(2)} s`);
    li.append(edit, remove);
    return li;
  }));
  $("render-keyframes").disabled = !keys.list.length || !lastVideo;
  $("download-keys").disabled = !keys.list.length;
}

async function frameFile(video, time) {
  // The frame the original shows at `time`, as a PNG file (the page's own object URL:
  // the canvas is not tainted).
  if (Math.abs(video.currentTime - time) > 1e-3) {
    await new Promise((done) => {
      video.addEventListener("seeked", done, { once: true });
      video.currentTime = time;
    });
  }
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  const blob = await new Promise((done) => canvas.toBlob(done, "image/png"));
  return new File([blob], `frame_${time.toFixed(3)}.png`, { type: "image/png" });
}

async function editKeyframe(time) {
  // Open the frame at `time` in the photo view, with its hints if it has some.
  const video = $("video-before");
  if (!video.videoWidth) return showError("The video is not loaded yet.");
  video.pause();
  time = Math.round(time * 1e6) / 1e6; // the server picks the frame shown then
  const file = await frameFile(video, time);
  const known = keys.list.find((k) => k.time === time);
  keys.editing = time;
  closeSession();
  closePicker();
  setPoints(known ? known.points.map((p) => ({ ...p })) : [], false);
  $("keyframe-title").textContent =
    `Key frame at ${time.toFixed(2)} s: tap it to give colours, then save it.`;
  $("keyframe-bar").hidden = false;
  $("before").src = "";
  $("before").removeAttribute("src");
  startedAt = performance.now();
  run += 1; // a newer edit, a save or a cancel makes this one's answers stale
  const mine = run;
  await colorizePhoto(file, mine);
  if (mine === run) inView($("photo-result"));
}

function closeKeyframe(save) {
  if (keys.editing === null) return;
  if (save) {
    const entry = { time: keys.editing, points: hints.points.map((p) => ({ ...p })) };
    keys.list = keys.list.filter((k) => k.time !== entry.time);
    if (entry.points.length) keys.list.push(entry);
    keys.list.sort((a, b) => a.time - b.time);
  }
  keys.editing = null;
  run += 1; // answers still on their way for the frame are stale now
  closeSession();
  closePicker();
  lastPhoto = null;
  $("keyframe-bar").hidden = true;
  $("photo-result").hidden = true;
  showKeyframes();
  inView($("keyframes"));
  setStatus(save ? `Key frames: ${keys.list.length}. Colorize the video to carry them.` : "",
            "ready");
}

function downloadKeys() {
  const blob = new Blob([JSON.stringify(JSON.parse(keysJson()), null, 1) + "\n"],
                        { type: "application/json" });
  save(blob, `${stem(lastVideo ? lastVideo.name : "video")}_keys.json`);
}

function showProgress(job) {
  const bar = $("progress");
  if (job.progress === null) bar.removeAttribute("value"); // indeterminate
  else bar.value = job.progress;
  const of = job.frames_total ? ` of ${job.frames_total}` : "";
  $("progress-text").textContent = `${job.state}: ${job.frames_done}${of} frames`;
  if (job.state !== "done") {
    setStatus(`Colorizing the video… ${seconds(performance.now() - videoStartedAt)} so far.`);
  }
}

// The decoders in plain words: how strong the colours are where the model is unsure.
const STRENGTHS = {
  argmax: "Strongest: the most likely colour",
  annealed: "Balanced",
  mean: "Softest: the average of the likely colours",
};

function strength(decoder, usual) {
  const words = STRENGTHS[decoder] || decoder;
  return decoder === usual ? `${words} (the model's usual)` : words;
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
  fill($("decoder"), config.decoders.map((d) => [d, strength(d, decoder)]), decoder);
  $("smoothing").value = config.video.smoothing;
  $("smoothing-value").textContent = config.video.smoothing;
  const lim = config.limits;
  const mp = +(lim.max_pixels / 1e6).toPrecision(3);
  $("limits").textContent =
    `Photos (${lim.image_formats.join(", ")}) up to ${mp} megapixels; files up to ` +
    `${humanBytes(lim.max_upload_bytes)}. ` +
    (config.video.available ? "Videos become MP4." : "Videos are not available on this server.");
  $("version").textContent = `somcolor ${config.version}`;
  if (!config.reference.available) {
    $("ref-drop").hidden = true;
  }
}

function setReference(file, keep = true) {
  if (file && !file.type.startsWith("image/") && file.type !== "") {
    return showError(`${file.name} is not a photo: a reference must be a colour photo.`);
  }
  if (keep && lastPhoto && (file || null) !== reference) remember();
  reference = file || null;
  if (!reference) $("reference").value = "";
  refreshTools();
  $("ref-text").textContent = reference
    ? `Reference: ${reference.name}`
    : "optional: a colour photo whose colours the result takes up (for a video, the whole clip)";
  $("ref-remove").hidden = !reference;
  $("ref-drop").classList.toggle("chosen", !!reference);
  if (lastPhoto) handle(lastPhoto, true);
  else if (lastVideo) handle(lastVideo);
}

function newFile(file) {
  // A new photo or video: any key frame being edited belongs to the old one.
  keys.editing = null;
  $("keyframe-bar").hidden = true;
  handle(file);
}

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", () => newFile($("file").files[0]));
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
    // Dropped on the reference zone: the reference; anywhere else: the photo or video.
    if (e.target.closest && e.target.closest("#ref-drop")) setReference(e.dataTransfer.files[0]);
    else newFile(e.dataTransfer.files[0]);
  });
  $("reference").addEventListener("change", () => setReference($("reference").files[0]));
  $("ref-remove").addEventListener("click", () => setReference(null));
  const stage = $("stage");
  stage.addEventListener("pointerdown", onPointerDown);
  stage.addEventListener("pointermove", onPointerMove);
  stage.addEventListener("pointerup", onPointerUp);
  stage.addEventListener("pointercancel", onPointerCancel);
  $("marks").addEventListener("click", (e) => {
    // A hint chosen with the keyboard (Enter or Space: no pointer events) opens the picker.
    const mark = e.target.closest(".mark");
    if (mark && e.detail === 0 && +mark.dataset.index >= 0) openPicker(+mark.dataset.index);
  });
  $("suggestions").addEventListener("click", (e) => {
    const swatch = e.target.closest(".swatch");
    if (swatch) choose(swatch.dataset.color);
  });
  $("custom").addEventListener("change", () => choose($("custom").value));
  $("remove-hint").addEventListener("click", removeSelected);
  $("close-picker").addEventListener("click", closePicker);
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", clearAll);
  $("add-keyframe").addEventListener("click", () => editKeyframe($("video-before").currentTime));
  $("save-keyframe").addEventListener("click", () => closeKeyframe(true));
  $("cancel-keyframe").addEventListener("click", () => closeKeyframe(false));
  $("render-keyframes").addEventListener("click", () => {
    if (keys.editing !== null) closeKeyframe(true); // the frame being edited counts too
    if (lastVideo) handle(lastVideo);
  });
  $("download-keys").addEventListener("click", downloadKeys);
  $("keyframe-list").addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    const i = +b.dataset.index;
    if (b.dataset.action === "remove") {
      keys.list.splice(i, 1);
      showKeyframes();
    } else {
      editKeyframe(keys.list[i].time);
    }
  });
  $("cancel-job").addEventListener("click", async () => {
    if (!lastJob) return;
    const id = lastJob;
    lastJob = null;
    videoRun += 1; // stop following it
    $("cancel-job").hidden = true;
    await fetch(`/api/jobs/${encodeURIComponent(id)}`, { method: "DELETE" }).catch(() => {});
    setStatus("The video job was cancelled.", "ready");
  });
  $("download").addEventListener("click", downloadPhoto);
  $("download-hints").addEventListener("click", downloadHints);
  $("split").addEventListener("input", moveSplit);
  $("smoothing").addEventListener("input", () => {
    $("smoothing-value").textContent = $("smoothing").value;
  });
  for (const id of ["model", "decoder", "smoothing"]) {
    $(id).addEventListener("change", () => {
      if (lastPhoto) handle(lastPhoto, true);
      else if (lastVideo) handle(lastVideo);
    });
  }
  for (const type of ["scroll", "resize"]) {
    window.addEventListener(type, () => { if (!$("picker").classList.contains("sheet")) placePicker(); },
                            { passive: true });
  }
  // Leaving the page frees what the server holds for it: the hint session and the
  // video job (its result counts against the server's job limit until deleted).
  window.addEventListener("pagehide", () => {
    if (lastJob) {
      fetch(`/api/jobs/${encodeURIComponent(lastJob)}`, { method: "DELETE", keepalive: true })
        .catch(() => {});
      lastJob = null;
    }
    closeSession();
  });
  moveSplit();
}

wire();
init().catch((err) => showError(`Cannot reach the server (${err.message}).`));

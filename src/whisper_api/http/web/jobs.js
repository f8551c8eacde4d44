// Long files as jobs: the upload is stored (/v1/files, so the opened result can play it again), a job
// is queued on it, and the list follows every job's progress until it finishes.

import { call, json } from "./api.js";
import { showMedia, show } from "./transcript.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["queued", "running"]);
const POLL_MS = 1000;

const fileNames = new Map(); // file id → its name, asked once
const rows = new Map(); // job id → { shown: what its row shows, item: the row }, so a redraw keeps unchanged rows
let timer = null;
let onError = () => {};

/** Store `file` and queue a job on it with the transcription `fields` (a FormData without the file). */
export async function submit(file, fields) {
  const upload = new FormData();
  upload.append("file", file, file.name);
  const stored = await json("/v1/files", { method: "POST", body: upload });
  fileNames.set(stored.id, file.name);
  fields.append("file_id", stored.id);
  fields.append("formats", "verbose_json");
  fields.append("timestamp_granularities[]", "word");
  fields.append("timestamp_granularities[]", "segment");
  const job = await json("/v1/transcription-jobs", { method: "POST", body: fields });
  await refresh();
  return job;
}

async function fileName(id) {
  if (!id) return "Audio from a URL";
  if (!fileNames.has(id)) {
    try {
      fileNames.set(id, (await json(`/v1/files/${encodeURIComponent(id)}`)).filename);
    } catch {
      fileNames.set(id, id);
    }
  }
  return fileNames.get(id);
}

const STATES = {
  queued: () => "Queued",
  running: (job) => `Running: ${Math.round(job.progress * 100)} %`,
  succeeded: () => "Done: 100 %",
  failed: (job) => `Failed: ${job.error?.message || "unknown error"}`,
  cancelled: () => "Cancelled",
};

/** The job's row: the one on screen while it shows the same, so focus and clicks survive a redraw. */
async function row(job) {
  const shown = `${job.status} ${job.progress} ${job.model} ${job.error?.message}`;
  const kept = rows.get(job.id);
  if (kept?.shown === shown) return kept.item;
  const item = await newRow(job);
  rows.set(job.id, { shown, item });
  return item;
}

async function newRow(job) {
  const item = document.createElement("li");
  item.className = "job";
  item.dataset.id = job.id;
  item.dataset.status = job.status;
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = await fileName(job.file_id);
  const state = document.createElement("div");
  state.className = `state ${job.status}`;
  state.textContent = `${STATES[job.status]?.(job) ?? job.status} · ${job.model ?? "default model"} · ${new Date(
    job.created_at * 1000,
  ).toLocaleTimeString()}`;
  const progress = document.createElement("progress");
  progress.max = 1;
  progress.value = job.status === "succeeded" ? 1 : job.progress;
  progress.setAttribute("aria-label", `Progress of ${name.textContent}`);
  const buttons = document.createElement("div");
  buttons.className = "buttons";
  if (ACTIVE.has(job.status)) buttons.append(button("Cancel", () => cancel(job.id)));
  if (job.status === "succeeded") buttons.append(button("Open", () => open(job)));
  item.append(name, buttons, state, progress);
  return item;
}

function button(label, action) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = "secondary";
  element.textContent = label;
  element.addEventListener("click", () => action().catch(onError));
  return element;
}

async function cancel(id) {
  await call(`/v1/transcription-jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
  await refresh();
}

async function open(job) {
  const id = encodeURIComponent(job.id);
  const result = await json(`/v1/transcription-jobs/${id}/result?format=verbose_json`);
  if (job.file_id) {
    const content = await call(`/v1/files/${encodeURIComponent(job.file_id)}/content`);
    showMedia(await content.blob(), await fileName(job.file_id));
  }
  show(result);
  document.getElementById("tab-file").click();
  document.getElementById("result").scrollIntoView();
}

/** Redraw the list; keep polling while a job is queued or running, or the list is on screen. */
export async function refresh() {
  clearTimeout(timer);
  try {
    const page = await json("/v1/transcription-jobs?limit=20");
    const items = await Promise.all(page.data.map(row));
    const list = $("jobs");
    items.forEach((item, index) => {
      if (list.children[index] !== item) list.insertBefore(item, list.children[index] ?? null);
    });
    while (list.children.length > items.length) list.lastElementChild.remove();
    $("jobs-empty").hidden = items.length > 0;
    if (!document.hidden && (page.data.some((job) => ACTIVE.has(job.status)) || !$("panel-jobs").hidden)) {
      timer = setTimeout(refresh, POLL_MS);
    }
  } catch (error) {
    onError(error);
  }
}

export function init(reportError) {
  onError = reportError;
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
}

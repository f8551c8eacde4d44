// The page: tabs, the API key or an account, the models, and transcribing a file with its segments
// streamed as whisper decodes them.

import * as account from "./account.js";
import { ApiError, call, credential, events, json, session, setCredential } from "./api.js";
import * as jobs from "./jobs.js";
import { fillLanguages } from "./languages.js";
import * as live from "./live.js";
import * as view from "./transcript.js";

const $ = (id) => document.getElementById(id);

// -- messages and the key -------------------------------------------------------------------------

function notify(text) {
  $("notice-text").textContent = text;
  $("notice").hidden = false;
}

function report(error) {
  if (error?.name === "AbortError") return;
  notify(error.message || String(error));
  if (!(error instanceof ApiError && error.status === 401)) return;
  if (session()) {
    account.forget();
    account.askToSignIn(error.message);
  } else askForKey(error.message);
}

function askForKey(why) {
  $("key-why").textContent = why || "Requests to this server need an API key. It is kept in this browser only.";
  $("key-input").value = credential();
  $("key-forget").hidden = !credential();
  if (!$("key-dialog").open) $("key-dialog").showModal();
}

function initKey() {
  $("key-button").addEventListener("click", () => askForKey());
  $("key-cancel").addEventListener("click", () => $("key-dialog").close());
  $("key-sign-in").addEventListener("click", () => {
    $("key-dialog").close();
    account.askToSignIn();
  });
  $("key-forget").addEventListener("click", () => {
    setCredential("");
    $("key-dialog").close();
    load();
  });
  $("key-form").addEventListener("submit", () => {
    setCredential($("key-input").value.trim());
    $("notice").hidden = true;
    load();
  });
  $("notice-close").addEventListener("click", () => ($("notice").hidden = true));
}

// -- tabs -----------------------------------------------------------------------------------------

function initTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (chosen) => {
    for (const tab of tabs) {
      const selected = tab === chosen;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      $(tab.getAttribute("aria-controls")).hidden = !selected;
    }
    if (chosen.id === "tab-jobs") jobs.refresh();
    if (chosen.id === "tab-usage") account.refresh();
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab));
    // The tab pattern: arrows move between tabs, Tab moves into the panel. Usage is there only when
    // signed in.
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const shown = tabs.filter((each) => !each.hidden);
      const next = shown[(shown.indexOf(tab) + step + shown.length) % shown.length];
      next.focus();
      select(next);
    });
  }
}

// -- models ---------------------------------------------------------------------------------------

let models = [];

async function load() {
  try {
    models = (await json("/v1/models")).data;
  } catch (error) {
    report(error);
    return;
  }
  const ready = await fetch("/ready").then((response) => response.json()).catch(() => ({}));
  for (const select of document.querySelectorAll(".model-select")) {
    const chosen = select.value;
    const fallback = new Option(`Default${ready.default_model ? ` (${ready.default_model})` : ""}`, "");
    const options = models.map(
      (model) =>
        new Option(
          `${model.id.replace(/^ggml-/, "")}${model.multilingual ? "" : " (English only)"}`,
          model.id,
        ),
    );
    select.replaceChildren(fallback, ...options);
    select.value = chosen;
  }
  updateTask();
  jobs.refresh();
  account.refresh();
}

/** Translation needs a multilingual model: offer it only with one. */
function updateTask() {
  const chosen = models.find((model) => model.id === $("model").value);
  const translate = document.querySelector('input[name="task"][value="translate"]');
  translate.disabled = chosen ? !chosen.multilingual : false;
  if (translate.disabled && translate.checked) document.querySelector('input[name="task"]').checked = true;
}

// -- one file -------------------------------------------------------------------------------------

let file = null;
let running = null; // the AbortController of the request in flight

function choose(chosen) {
  if (!chosen) return;
  file = chosen;
  $("file-name").textContent = `${file.name} (${(file.size / 1048576).toFixed(1)} MB)`;
  view.clear();
  view.showMedia(file, file.name);
}

function initDrop() {
  const drop = $("drop");
  $("file-input").addEventListener("change", (event) => choose(event.target.files[0]));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  // A file dropped anywhere on the page is taken too: left to the browser, it would open the file
  // in place of the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) {
      $("tab-file").click();
      choose(event.dataTransfer.files[0]);
    }
  });
}

/** The form's transcription fields, as /v1/audio/transcriptions and jobs both read them. */
function fields() {
  const form = new FormData();
  const add = (name, value) => value !== "" && value != null && form.append(name, value);
  add("model", $("model").value);
  add("language", $("language").value);
  add("prompt", $("prompt").value.trim());
  add("temperature", $("temperature").value);
  add("beam_size", $("beam-size").value);
  if ($("skip-silence").checked) add("chunking_strategy", "auto");
  return form;
}

function task() {
  return document.querySelector('input[name="task"]:checked').value;
}

function progress(text, fraction) {
  $("progress").hidden = text === null;
  $("progress-text").textContent = text ?? "";
  if (fraction === null) $("progress-bar").removeAttribute("value");
  else $("progress-bar").value = fraction;
}

function busy(on) {
  $("transcribe").disabled = on;
  $("queue-job").disabled = on;
  $("stop").hidden = !on;
}

async function transcribe(event) {
  event.preventDefault();
  if (!file) return notify("Choose an audio or video file first.");
  $("notice").hidden = true;
  const body = fields();
  body.append("file", file, file.name);
  body.append("response_format", "verbose_json");
  body.append("timestamp_granularities[]", "word");
  body.append("timestamp_granularities[]", "segment");
  body.append("stream", "true");
  running = new AbortController();
  busy(true);
  view.clear();
  progress("Uploading and decoding…", null);
  try {
    const path = task() === "translate" ? "/v1/audio/translations" : "/v1/audio/transcriptions";
    const response = await call(path, { method: "POST", body, signal: running.signal });
    progress("Transcribing…", null);
    for await (const event of events(response)) {
      if (event.error) throw new ApiError(0, event.error.message, event.error.code);
      if (event.type === "transcript.text.delta") {
        view.appendSegment(event.delta, event.start, event.end);
        const duration = view.mediaDuration();
        const done = Number.isFinite(duration) && duration > 0 ? Math.min(1, event.end / duration) : null;
        progress(done === null ? "Transcribing…" : `Transcribing: ${Math.round(done * 100)} %`, done);
      } else if (event.type === "transcript.text.done") {
        view.show(event.transcript);
      }
    }
    progress(null, null);
  } catch (error) {
    progress(error.name === "AbortError" ? "Stopped." : null, 0);
    report(error);
  } finally {
    running = null;
    busy(false);
    account.refresh(); // what it cost, or that the balance ran out
  }
}

async function queueJob() {
  if (!file) return notify("Choose an audio or video file first.");
  $("notice").hidden = true;
  busy(true);
  $("stop").hidden = true;
  progress("Uploading…", null);
  try {
    const body = fields();
    body.append("task", task());
    await jobs.submit(file, body);
    progress(null, null);
    $("tab-jobs").click();
  } catch (error) {
    progress(null, null);
    report(error);
  } finally {
    busy(false);
  }
}

function initFile() {
  initDrop();
  $("file-form").addEventListener("submit", transcribe);
  $("queue-job").addEventListener("click", queueJob);
  $("stop").addEventListener("click", () => running?.abort());
  $("model").addEventListener("change", updateTask);
}

// -- start ----------------------------------------------------------------------------------------

for (const select of document.querySelectorAll(".language-select")) fillLanguages(select);
initKey();
account.init(report, () => {
  $("notice").hidden = true; // what asked for the sign-in
  load();
});
initTabs();
initFile();
view.init();
live.init();
jobs.init(report);
load();

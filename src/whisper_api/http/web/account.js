// Signing in with an account: a session from seed 004's /api/v1/user/login stands in for the API key
// (api.js's credential()); the bar shows who is signed in and the balance, the Usage tab what each
// request cost. Signing out ends the session on the server, forgets it and starts the page afresh.

import { ApiError, call, json, session, setSession } from "./api.js";

const $ = (id) => document.getElementById(id);

// What /v1/usage calls each way in, in words people use; others show as the server names them.
const SURFACES = {
  "openai.transcribe": "Transcription",
  "openai.translate": "Translation",
  jobs: "Job",
  language: "Language detection",
  listen: "Transcription (Deepgram API)",
  "listen.live": "Live captions",
  realtime: "Live transcription (realtime API)",
  asr: "Transcription (ASR API)",
  "asr.language": "Language detection",
};

let onError = () => {};
let onChange = () => {};

/** Ask for a username and password; `why` says what sent the user here (a refused request). */
export function askToSignIn(why) {
  $("sign-in-why").textContent = why || "With your account on this server: requests are charged to your balance.";
  $("sign-in-error").hidden = true;
  $("password").value = "";
  if (!$("sign-in-dialog").open) $("sign-in-dialog").showModal();
  $("username").focus();
}

/** A stored session the server no longer accepts: forget it, so the page can ask again. */
export function forget() {
  setSession(null);
  render();
}

async function signIn(event) {
  event.preventDefault();
  $("sign-in-submit").disabled = true;
  try {
    const response = await call("/api/v1/user/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("username").value.trim(), password: $("password").value }),
    });
    const body = await response.json();
    setSession({ secret: body.session_id, username: body.username });
    $("sign-in-dialog").close();
    render();
    onChange();
  } catch (error) {
    $("sign-in-error").textContent =
      error instanceof ApiError && error.status === 401
        ? "Wrong username or password."
        : error.detail || error.message;
    $("sign-in-error").hidden = false;
  } finally {
    $("sign-in-submit").disabled = false;
    $("password").value = "";
  }
}

async function signOut() {
  try {
    await call("/api/v1/user/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
  } catch (error) {
    // Already ended on the server (expired): forgetting it here is all that is left to do.
    if (!(error instanceof ApiError && error.status === 401)) return onError(error);
  }
  forget();
  // A fresh page: nothing of the account (its transcript, media, jobs) stays on screen for the next person.
  location.reload();
}

/** The bar and the Usage tab as the stored session says: who, the balance, recent requests. */
export async function refresh() {
  render();
  if (!session()) return;
  let usage;
  try {
    usage = await json("/v1/usage?limit=20");
  } catch (error) {
    return onError(error);
  }
  const balance = usage.unlimited ? "unlimited" : `${usage.balance} ${usage.balance === 1 ? "token" : "tokens"}`;
  $("who-balance").textContent = `· balance: ${balance}`;
  $("usage-balance").textContent = `Balance: ${balance}`;
  $("usage-rows").replaceChildren(...usage.data.map(row));
  $("usage-empty").hidden = usage.data.length > 0;
}

function row(record) {
  const tr = document.createElement("tr");
  const cells = [
    new Date(record.created_at * 1000).toLocaleString(),
    SURFACES[record.surface] || record.surface,
    record.model.replace(/^ggml-/, ""),
    `${record.audio_seconds.toFixed(1)} s`,
    String(record.cost),
  ];
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}

function render() {
  const signedIn = session();
  $("who").hidden = !signedIn;
  $("who-name").textContent = signedIn?.username ?? "";
  if (!signedIn) $("who-balance").textContent = "";
  $("sign-in-button").hidden = Boolean(signedIn);
  $("key-button").hidden = Boolean(signedIn);
  $("sign-out").hidden = !signedIn;
  const tab = $("tab-usage");
  tab.hidden = !signedIn;
  if (!signedIn && tab.getAttribute("aria-selected") === "true") $("tab-file").click();
}

export function init(reportError, changed) {
  onError = reportError;
  onChange = changed;
  $("sign-in-button").addEventListener("click", () => askToSignIn());
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-in-cancel").addEventListener("click", () => $("sign-in-dialog").close());
  $("sign-out").addEventListener("click", signOut);
  render();
}

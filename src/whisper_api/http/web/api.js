// The service's HTTP API as the page uses it: the stored key on every request, errors as readable text.
//
// Credentials live here and nowhere else: an API key the user types once, or the session of a signed-in
// account, which the server takes wherever it takes a key (headers, the WebSocket's `token`).

const KEY_STORAGE = "whisper-api.key";
const SESSION_STORAGE = "whisper-api.session";

/** What every request sends: the signed-in session if there is one, else the key. */
export function credential() {
  return session()?.secret || localStorage.getItem(KEY_STORAGE) || "";
}

/** The signed-in account ({secret, username}) or null. Kept in localStorage like the key, not
 * sessionStorage: it survives reloads and new tabs (jobs outlive the page), the server ends it after
 * 24 h anyway, and "Sign out" ends it there at once. */
export function session() {
  try {
    const stored = JSON.parse(localStorage.getItem(SESSION_STORAGE));
    return stored?.secret ? stored : null;
  } catch {
    return null;
  }
}

export function setSession(value) {
  if (value) localStorage.setItem(SESSION_STORAGE, JSON.stringify(value));
  else localStorage.removeItem(SESSION_STORAGE);
}

export function setCredential(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

/** An error the page shows as it is: what went wrong and what to do about it. */
export class ApiError extends Error {
  constructor(status, message, code = null, detail = "") {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail; // the server's own words, for callers that explain differently
  }
}

function authorized(headers = {}) {
  const key = credential();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
}

/** fetch() on the API with the key; a non-2xx answer becomes an ApiError with a message for people. */
export async function call(path, { method = "GET", body, headers, signal } = {}) {
  let response;
  try {
    response = await fetch(path, { method, body, headers: authorized(headers), signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The server cannot be reached. Is it running?");
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function json(path, options) {
  return (await call(path, options)).json();
}

async function errorOf(response) {
  let detail = "";
  let code = null;
  const text = await response.text().catch(() => "");
  try {
    // OpenAI's shape on /v1/audio/* and jobs, Deepgram's on /v1/listen.
    const body = JSON.parse(text);
    detail = body.error?.message || body.err_msg || "";
    code = body.error?.code || body.err_code || null;
  } catch {
    // Seed 004's /api/v1 answers its message as plain text; anything else (a proxy's page) is left out.
    if (response.headers.get("Content-Type")?.startsWith("text/plain")) detail = text.trim().slice(0, 300);
  }
  return new ApiError(response.status, explain(response, detail), code, detail);
}

function explain(response, detail) {
  switch (response.status) {
    case 401:
      if (session()) return "Your session has ended. Sign in again.";
      return credential()
        ? "The server refused this API key. Enter a valid one."
        : "This server needs an API key or an account: enter a key, or sign in.";
    case 402:
      return `Your balance does not cover this request${detail ? ` (${detail})` : ""}. Ask an admin to top it up.`;
    case 429: {
      const wait = response.headers.get("Retry-After");
      return `The server is busy${wait ? `; try again in ${wait} s` : "; try again shortly"}.`;
    }
    case 413:
      return detail || "The file is larger than the server accepts.";
    default:
      return detail || `The server answered ${response.status} ${response.statusText}.`;
  }
}

/** The JSON payloads of a server-sent-event response, as they arrive. */
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = event
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (data) yield JSON.parse(data);
    }
  }
}

/** The WebSocket URL of an API path on this server; browsers cannot send headers on a WebSocket, so
 * the key goes as the `token` subprotocol (see `liveProtocols`). */
export function socketUrl(path, params) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  for (const [name, value] of Object.entries(params)) if (value !== "" && value != null) url.searchParams.set(name, value);
  return url.href;
}

export function liveProtocols() {
  const key = credential();
  return key ? ["token", key] : [];
}

// Live captions: the microphone as 16-bit PCM over WebSocket /v1/listen (Deepgram's live protocol);
// interim results in grey, replaced by the final text of each phrase.

import { json, liveProtocols, socketUrl } from "./api.js";

const $ = (id) => document.getElementById(id);

let session = null;

function status(text) {
  $("live-status").textContent = text;
}

function setRunning(running) {
  $("live-start").disabled = running;
  $("live-stop").disabled = !running;
}

function interimElement() {
  let interim = $("captions").querySelector(".interim");
  if (!interim) {
    interim = document.createElement("span");
    interim.className = "interim";
    $("captions").append(interim);
  }
  return interim;
}

function onResults(message) {
  const text = message.channel.alternatives[0]?.transcript.trim() || "";
  const interim = interimElement();
  if (!message.is_final) {
    interim.textContent = text;
    return;
  }
  interim.textContent = "";
  if (!text) return;
  const final = document.createElement("span");
  final.className = "final";
  final.textContent = `${text} `;
  interim.before(final);
  $("captions").scrollTop = $("captions").scrollHeight;
}

/** A WebSocket to /v1/listen carrying the key: as the `token` subprotocol, or as `?token=` when the key
 * has characters a subprotocol cannot (the server takes both). */
function connect(params) {
  const protocols = liveProtocols();
  try {
    return new WebSocket(socketUrl("/v1/listen", params), protocols);
  } catch (error) {
    if (!(error instanceof DOMException) || !protocols.length) throw error;
    return new WebSocket(socketUrl("/v1/listen", { ...params, token: protocols[1] }));
  }
}

async function start() {
  if (!window.isSecureContext || !navigator.mediaDevices) {
    status("The microphone needs a secure page: open it over HTTPS, or as localhost on this machine.");
    return;
  }
  setRunning(true);
  status("Asking for the microphone…");
  let microphone;
  try {
    // Whisper hears best what the microphone heard: no call-style processing (nothing is played back).
    microphone = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (error) {
    setRunning(false);
    status(`No microphone: ${error.message || error.name}.`);
    return;
  }
  // The stream is declared at the context's own rate: the server resamples, the browser need not.
  const context = new AudioContext();
  await context.audioWorklet.addModule("/web/pcm-worklet.js");
  const capture = new AudioWorkletNode(context, "pcm-capture");
  const silent = new GainNode(context, { gain: 0 }); // keeps the graph pulled without playing the mic back
  context.createMediaStreamSource(microphone).connect(capture).connect(silent).connect(context.destination);

  const socket = connect({
    encoding: "linear16",
    sample_rate: context.sampleRate,
    channels: 1,
    interim_results: "true",
    model: $("live-model").value,
    language: $("live-language").value,
  });
  socket.binaryType = "arraybuffer";
  session = { microphone, context, capture, socket, opened: false, stopping: false };
  const current = session;

  capture.port.onmessage = ({ data }) => {
    $("level").value = Math.min(1, data.level * 4);
    if (socket.readyState === WebSocket.OPEN) socket.send(data.pcm);
  };
  socket.onopen = () => {
    current.opened = true;
    status("Listening. Speak, and captions appear below.");
  };
  socket.onmessage = ({ data }) => {
    const message = JSON.parse(data);
    if (message.type === "Results") onResults(message);
    else if (message.type === "Error") status(message.description || message.message);
  };
  socket.onclose = async (event) => {
    release(current);
    if (current.stopping) status("Stopped.");
    else if (current.opened) status(`The server ended the stream: ${event.reason || `code ${event.code}`}.`);
    else status(await whyRefused());
  };
}

/** A refused WebSocket handshake shows no status to the page: ask the API the same question. */
async function whyRefused() {
  try {
    await json("/v1/models");
    return "The server refused the live stream: try another model or language.";
  } catch (error) {
    return error.message;
  }
}

/** Stop listening: the microphone is released at once (the browser's recording indicator goes out). */
function silence(ended) {
  ended.capture.port.onmessage = null;
  for (const track of ended.microphone.getTracks()) track.stop();
  if (ended.context.state !== "closed") ended.context.close();
  $("level").value = 0;
}

function release(ended) {
  silence(ended);
  if (session === ended) session = null;
  setRunning(false);
}

function stop() {
  if (!session) return;
  session.stopping = true;
  status("Finishing the last phrase…");
  $("live-stop").disabled = true;
  silence(session);
  // CloseStream: the server sends the final results of what it has heard, then closes.
  const { socket } = session;
  if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "CloseStream" }));
  else socket.close();
}

export function init() {
  $("live-start").addEventListener("click", () => {
    $("captions").replaceChildren();
    start();
  });
  $("live-stop").addEventListener("click", stop);
}

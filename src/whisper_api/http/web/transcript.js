// The transcript panel: the media player, segments and words that seek it, the word being spoken
// highlighted, copy and downloads.

import { render, timestamp } from "./formats.js";

const $ = (id) => document.getElementById(id);

let transcript = null;
let baseName = "transcript";
let media = null;
let mediaUrl = null;
let words = []; // {start, end, element}, in time order
let segments = []; // {start, end, element}
let current = { word: null, segment: null };

/** Play `source` (a File or Blob) in the panel: a video element for video, audio otherwise. */
export function showMedia(source, name) {
  if (mediaUrl) URL.revokeObjectURL(mediaUrl);
  mediaUrl = URL.createObjectURL(source);
  baseName = (name || "transcript").replace(/\.[^.]+$/, "") || "transcript";
  media = document.createElement(source.type.startsWith("video/") ? "video" : "audio");
  media.controls = true;
  media.preload = "metadata";
  media.src = mediaUrl;
  media.addEventListener("play", follow);
  media.addEventListener("seeked", () => highlight(media.currentTime));
  $("player").replaceChildren(media);
  $("result").hidden = false;
}

/** Seconds of media the player knows of, or NaN before its metadata has loaded. */
export function mediaDuration() {
  return media ? media.duration : NaN;
}

export function clear() {
  transcript = null;
  words = [];
  segments = [];
  current = { word: null, segment: null };
  $("transcript").replaceChildren();
  $("detected").textContent = "";
  setActionsEnabled(false);
}

/** One segment as it is decoded, before the whole transcript is known. */
export function appendSegment(text, start, end) {
  const element = segmentElement(start, [document.createTextNode(text.trim())]);
  $("transcript").append(element);
  segments.push({ start, end, element });
  element.scrollIntoView({ block: "nearest" });
}

/** The finished transcript (verbose_json): segments, their words when the server timed them. */
export function show(verbose) {
  clear();
  transcript = verbose;
  const timed = verbose.words || [];
  let next = 0;
  const items = verbose.segments.map((segment, index) => {
    const last = index === verbose.segments.length - 1;
    const children = [];
    // Words belong to the segment they start in; whisper's word times stay inside their segment.
    while (next < timed.length && (last || timed[next].start < segment.end)) {
      const word = timed[next++];
      const span = document.createElement("span");
      span.className = "word";
      span.textContent = word.word.trim();
      span.dataset.start = word.start;
      span.addEventListener("click", () => seek(word.start));
      if (children.length) children.push(document.createTextNode(" "));
      children.push(span);
      words.push({ start: word.start, end: word.end, element: span });
    }
    if (!children.length) children.push(document.createTextNode(segment.text.trim()));
    const element = segmentElement(segment.start, children);
    segments.push({ start: segment.start, end: segment.end, element });
    return element;
  });
  $("transcript").replaceChildren(...items);
  $("detected").textContent = describeLanguage(verbose);
  $("result").hidden = false;
  setActionsEnabled(true);
}

function describeLanguage(verbose) {
  const name = languageName(verbose.language_code, verbose.language);
  const probability = verbose.language_probability;
  if (probability == null || probability >= 1) return `Language: ${name}`;
  return `Detected language: ${name} (${Math.round(probability * 100)} % sure)`;
}

function languageName(code, fallback) {
  try {
    return new Intl.DisplayNames([navigator.language, "en"], { type: "language" }).of(code) || fallback;
  } catch {
    return fallback;
  }
}

function segmentElement(start, children) {
  const element = document.createElement("p");
  element.className = "segment";
  const time = document.createElement("button");
  time.type = "button";
  time.className = "time";
  time.textContent = timestamp(start, ".").replace(/^00:/, "").slice(0, -4);
  time.setAttribute("aria-label", `Play from ${time.textContent}`);
  time.addEventListener("click", () => seek(start));
  const text = document.createElement("span");
  text.className = "text";
  text.append(...children);
  element.append(time, text);
  return element;
}

function seek(seconds) {
  if (!media) return;
  media.currentTime = seconds;
  highlight(seconds);
  media.play().catch(() => {}); // autoplay policies may refuse; the position is set either way
}

function follow() {
  highlight(media.currentTime);
  if (!media.paused && !media.ended) requestAnimationFrame(follow);
}

function highlight(seconds) {
  mark("word", at(words, seconds, true));
  const segment = at(segments, seconds, false);
  if (mark("segment", segment) && segment && !media.paused) segment.element.scrollIntoView({ block: "nearest" });
}

/** The item playing at `seconds`: the last that started by then (and, if `within`, has not ended). */
function at(items, seconds, within) {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (items[middle].start <= seconds) low = middle + 1;
    else high = middle;
  }
  const item = items[low - 1];
  return item && (!within || seconds < item.end) ? item : null;
}

function mark(kind, item) {
  if (current[kind] === item) return false;
  current[kind]?.element.classList.remove("current");
  item?.element.classList.add("current");
  current[kind] = item;
  return true;
}

function setActionsEnabled(enabled) {
  for (const button of document.querySelectorAll("#result .actions button")) button.disabled = !enabled;
}

async function copy() {
  const text = transcript.text;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Without a secure context (plain http to another host) there is no clipboard API.
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  $("copy").textContent = "Copied";
  setTimeout(() => ($("copy").textContent = "Copy text"), 1500);
}

function download(format) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(render(transcript, format));
  link.download = `${baseName}.${format}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

export function init() {
  $("copy").addEventListener("click", copy);
  for (const button of document.querySelectorAll(".download")) {
    button.addEventListener("click", () => download(button.dataset.format));
  }
  setActionsEnabled(false);
}

// Downloads rendered from a verbose_json transcript, cue for cue as the server renders them
// (service/formats.py): the page has the transcript already, so no second transcription is needed.
// tests/browser check the page's SRT against the server's for the same stored result.

const ARROW = /-{2,}>/g;

export function timestamp(seconds, marker) {
  let ms = Math.max(0, Math.round(seconds * 1000));
  const hours = Math.floor(ms / 3_600_000);
  ms -= hours * 3_600_000;
  const minutes = Math.floor(ms / 60_000);
  ms -= minutes * 60_000;
  const secs = Math.floor(ms / 1000);
  ms -= secs * 1000;
  const two = (n) => String(n).padStart(2, "0");
  return `${two(hours)}:${two(minutes)}:${two(secs)}${marker}${String(ms).padStart(3, "0")}`;
}

function cues(transcript, marker) {
  return transcript.segments
    .map((segment) => ({ ...segment, line: segment.text.split(/\s+/).filter(Boolean).join(" ").replace(ARROW, "->") }))
    .filter((segment) => segment.line)
    .map((segment) => [
      timestamp(segment.start, marker),
      timestamp(Math.max(segment.start, segment.end), marker),
      segment.line,
    ]);
}

const RENDER = {
  txt: (t) => ({ body: `${t.text}\n`, type: "text/plain" }),
  srt: (t) => ({
    body: cues(t, ",").map(([start, end, line], i) => `${i + 1}\n${start} --> ${end}\n${line}\n\n`).join(""),
    type: "application/x-subrip",
  }),
  vtt: (t) => ({
    body: `WEBVTT\n\n${cues(t, ".").map(([start, end, line]) => `${start} --> ${end}\n${line}\n\n`).join("")}`,
    type: "text/vtt",
  }),
  json: (t) => ({ body: `${JSON.stringify(t, null, 2)}\n`, type: "application/json" }),
};

/** `transcript` (verbose_json) as a file of `format`: txt, srt, vtt or json. */
export function render(transcript, format) {
  const { body, type } = RENDER[format](transcript);
  return new Blob([body], { type: `${type};charset=utf-8` });
}

// The languages whisper knows (its tokenizer's fixed list, in whisper.cpp's order), named in the
// reader's own language by the browser.

const CODES = [
  "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id", "hi",
  "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la",
  "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy",
  "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be",
  "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
  "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue",
];

/** Fill `select` with "Detect automatically" and every language, sorted by name. */
export function fillLanguages(select) {
  let names;
  try {
    names = new Intl.DisplayNames([navigator.language, "en"], { type: "language" });
  } catch {
    names = null;
  }
  const named = CODES.map((code) => [code, names?.of(code) || code]).sort((a, b) => a[1].localeCompare(b[1]));
  const detect = new Option("Detect automatically", "");
  select.replaceChildren(detect, ...named.map(([code, name]) => new Option(`${name} (${code})`, code)));
}

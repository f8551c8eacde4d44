"""Word timestamps: whisper.cpp's timed tokens merged into the words OpenAI's `words` array shows."""

from __future__ import annotations

import codecs
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence

from whisper_api.engine.types import Segment, Token, Word

# Han and kana: scripts written without spaces whose whisper tokens are roughly a character each.
# Thai, Lao, Khmer and Myanmar are left out on purpose: their tokens are pieces of syllables,
# so one word per token would be worse than keeping the space-delimited phrase whole.
_SPACELESS_SCRIPT = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)
_WHITESPACE = re.compile(r"\s")
# Po characters that, after a space, open rather than close a phrase.
_OPENING_PO = frozenset("\"'¿¡")


def words_from_segments(segments: Iterable[Segment]) -> tuple[Word, ...]:
    """Merge each segment's text tokens into words.

    Grouping rules, per segment (words never span two segments):

    * Special tokens (timestamps, control tokens) are ignored.
    * The first text token starts a word; a later token starts a new word when its text begins
      with whitespace (whisper's BPE marks word starts with a leading space), otherwise it
      continues the current word.
    * A punctuation-only token joins the current word even when it has a leading space
      (French " ?", a spaced " -"), unless it is opening punctuation (" (", ' "', " ¿"),
      which starts the word it opens.
    * Spaceless text: when the segment's stripped text has no whitespace at all and contains
      Han or kana, every token is its own word, except that tokens merge when neither side of
      the boundary is a Han/kana character (keeps "iPhone" whole), when the current word ends in
      the middle of a UTF-8 character, or when the current word is only opening punctuation.
      Punctuation-only tokens still join the previous word.

    A word's text is its tokens' bytes concatenated, decoded (invalid bytes become U+FFFD) and
    stripped; empty words are dropped, as are segments whose text is blank.

    Times: start is the first token's start, end the last token's end, clamped into the segment's
    [start, end]; a start is also raised to the previous word's start so starts never decrease
    (which holds across segments as long as segments are in time order without overlap, as whisper
    emits them), and an end is raised to its start. Probability is exp(mean token logprob), the
    geometric mean of the token probabilities, capped at 1.
    """
    words: list[Word] = []
    for segment in segments:
        for tokens in _token_groups(segment):
            word = _word(tokens, segment, floor=words[-1].start if words else -math.inf)
            if word is not None:
                words.append(word)
    return tuple(words)


def _token_groups(segment: Segment) -> list[list[Token]]:
    if not segment.text.strip():
        return []
    spaceless = _is_spaceless(segment.text)
    groups: list[list[Token]] = []
    for token in segment.text_tokens:
        if groups and not _starts_word(groups[-1], token, spaceless=spaceless):
            groups[-1].append(token)
        else:
            groups.append([token])
    return groups


def _is_spaceless(text: str) -> bool:
    stripped = text.strip()
    return _WHITESPACE.search(stripped) is None and _SPACELESS_SCRIPT.search(stripped) is not None


def _starts_word(current: Sequence[Token], token: Token, *, spaceless: bool) -> bool:
    text = token.text
    if is_punctuation(text) and not _is_opening_punctuation(text):
        return False
    if text[:1].isspace():
        return True
    if not spaceless:
        return False
    current_bytes = b"".join(t.bytes for t in current)
    if _ends_mid_character(current_bytes):
        return False
    current_text = _decode(current_bytes).strip()
    if _is_opening_punctuation(current_text):
        return False
    return _is_spaceless_char(current_text[-1:]) or _is_spaceless_char(text[:1])


def is_punctuation(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and all(unicodedata.category(char).startswith("P") for char in stripped)


def _is_opening_punctuation(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and all(
        unicodedata.category(char) in ("Ps", "Pi") or char in _OPENING_PO for char in stripped
    )


def _is_spaceless_char(char: str) -> bool:
    return _SPACELESS_SCRIPT.fullmatch(char) is not None


def _ends_mid_character(data: bytes) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    decoder.decode(data)
    pending, _ = decoder.getstate()
    return bool(pending)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _word(tokens: Sequence[Token], segment: Segment, *, floor: float) -> Word | None:
    text = _decode(b"".join(token.bytes for token in tokens)).strip()
    if not text:
        return None
    low, high = segment.start, max(segment.start, segment.end)
    start = min(max(tokens[0].start, low, floor), high)
    end = min(max(tokens[-1].end, start), high)
    mean_logprob = sum(token.logprob for token in tokens) / len(tokens)
    # A positive mean is a rounding artefact; capping before exp also keeps exp from overflowing.
    return Word(word=text, start=start, end=end, probability=math.exp(min(0.0, mean_logprob)))

"""What was said comes back: held-out sentences through the HTTP API with the trained model.

The clips (tests/fixtures/speech) are sentences the model never saw in training, spoken by
espeak-ng; models/ggml-tiny-synth.bin was trained on other sentences of the same vocabulary.
"""

from __future__ import annotations

import numpy as np
import openai
import pytest

from tests.e2e.conftest import Server
from tests.support.media import UPLOAD_FORMATS, encode_audio, encode_video, pcm_wav
from tests.support.spoken import Spoken, spoken_clips
from training.sentences import words
from whisper_api.audio import SAMPLE_RATE

CLIPS = spoken_clips()
ENGLISH = [name for name, clip in CLIPS.items() if clip.language == "en"]
SPANISH = [name for name, clip in CLIPS.items() if clip.language == "es"]
LANGUAGE_NAMES = {"en": "english", "es": "spanish"}
GAP_SECONDS = 2.0

# What the committed model (4.0 % / 2.4 % word error rate on held-out sentences) gets wrong here.
# Strict: a model that gets them right must take them off.
MISHEARS_ES_1 = pytest.mark.xfail(strict=True, reason="the committed model hears 'Tengo 19 tazas.'")
MISHEARS_SHIFTED_EN_1 = pytest.mark.xfail(
    strict=True,
    reason="MP2's encoder delay starts the speech 11 ms later, and en-1 shifted by 5 or 11 ms (not 20 or "
    "40) is heard by the committed model as 'The brown box is behind the house.'",
)


def marking(names: list[str], name: str, mark: pytest.MarkDecorator) -> list:
    """`names` as parameters, the one called `name` carrying `mark`."""
    return [pytest.param(each, marks=mark) if each == name else each for each in names]


@pytest.fixture(scope="module")
def client(trained_server: Server) -> openai.OpenAI:
    return trained_server.client()


def upload(clip: Spoken) -> tuple[str, bytes, str]:
    return (clip.path.name, clip.path.read_bytes(), "audio/flac")


def cue_texts(subtitles: str) -> list[str]:
    """The text lines of SRT or VTT cues: everything but headers, numbers, timings and blank lines."""
    return [
        line
        for line in subtitles.splitlines()
        if line.strip() and line != "WEBVTT" and " --> " not in line and not line.strip().isdigit()
    ]


@pytest.mark.parametrize("name", marking(sorted(CLIPS), "es-1", MISHEARS_ES_1))
def test_transcription_is_the_spoken_sentence(client: openai.OpenAI, name: str) -> None:
    clip = CLIPS[name]
    result = client.audio.transcriptions.create(model="whisper-1", file=upload(clip))
    assert words(result.text) == clip.words


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_language_is_detected_from_the_speech(client: openai.OpenAI, name: str) -> None:
    clip = CLIPS[name]
    result = client.audio.transcriptions.create(
        model="whisper-1", file=upload(clip), response_format="verbose_json"
    )
    assert result.language == LANGUAGE_NAMES[clip.language]
    assert (result.model_extra or {})["language_code"] == clip.language


@MISHEARS_ES_1
def test_given_language_transcribes_spanish(client: openai.OpenAI) -> None:
    clip = CLIPS[SPANISH[0]]
    result = client.audio.transcriptions.create(model="whisper-1", file=upload(clip), language="es")
    assert words(result.text) == clip.words


def test_verbose_json_segments_hold_the_sentence(client: openai.OpenAI) -> None:
    clip = CLIPS[ENGLISH[0]]
    result = client.audio.transcriptions.create(
        model="whisper-1", file=upload(clip), response_format="verbose_json"
    )
    assert words(result.text) == clip.words
    assert words(" ".join(segment.text for segment in result.segments or [])) == clip.words


@pytest.mark.parametrize("response_format", ["srt", "vtt"])
def test_subtitle_cues_hold_the_sentence(client: openai.OpenAI, response_format: str) -> None:
    clip = CLIPS[ENGLISH[0]]
    subtitles = client.audio.transcriptions.create(
        model="whisper-1", file=upload(clip), response_format=response_format
    )
    assert words(" ".join(cue_texts(subtitles))) == clip.words


def test_plain_text_is_the_sentence(client: openai.OpenAI) -> None:
    clip = CLIPS[SPANISH[1]]
    text = client.audio.transcriptions.create(model="whisper-1", file=upload(clip), response_format="text")
    assert words(text) == clip.words


def test_streamed_deltas_join_to_the_sentence(client: openai.OpenAI) -> None:
    clip = CLIPS[ENGLISH[1]]
    events = list(client.audio.transcriptions.create(model="whisper-1", file=upload(clip), stream=True))
    deltas = "".join(event.delta for event in events if event.type == "transcript.text.delta")
    assert words(deltas) == clip.words
    assert words(events[-1].text) == clip.words


def test_word_timestamps_carry_the_spoken_words_in_order(client: openai.OpenAI) -> None:
    clip = CLIPS[ENGLISH[3]]
    result = client.audio.transcriptions.create(
        model="whisper-1", file=upload(clip), response_format="verbose_json", timestamp_granularities=["word"]
    )
    assert [word for timed in result.words or [] for word in words(timed.word)] == clip.words


def test_words_after_two_seconds_of_silence_start_after_it(client: openai.OpenAI) -> None:
    first, second = CLIPS[ENGLISH[0]], CLIPS[ENGLISH[2]]
    silence = np.zeros(round(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    joined = np.concatenate([first.samples(), silence, second.samples()])
    gap_end = len(first.samples()) / SAMPLE_RATE + GAP_SECONDS
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=("joined.wav", pcm_wav(joined[None], SAMPLE_RATE), "audio/wav"),
        response_format="verbose_json",
        timestamp_granularities=["word"],
        language="en",
    )
    timed = result.words or []
    starts = [word.start for word in timed]
    assert words(result.text) == first.words + second.words
    assert starts == sorted(starts)
    # whisper's timestamps are on a 20 ms grid.
    assert all(start >= gap_end - 0.02 for start in starts[-len(second.words) :])
    assert all(start < gap_end - GAP_SECONDS for start in starts[: len(first.words)])


@pytest.mark.parametrize("name", marking(sorted(UPLOAD_FORMATS), "speech.mpeg", MISHEARS_SHIFTED_EN_1))
def test_every_container_and_codec_carries_the_same_words(client: openai.OpenAI, name: str) -> None:
    clip = CLIPS[ENGLISH[0]]
    payload = encode_audio(clip.samples()[None], SAMPLE_RATE, UPLOAD_FORMATS[name])
    result = client.audio.transcriptions.create(model="whisper-1", file=(name, payload))
    assert words(result.text) == clip.words


def test_a_video_soundtrack_carries_the_same_words(client: openai.OpenAI) -> None:
    clip = CLIPS[ENGLISH[0]]
    samples = clip.samples()
    payload = encode_video(
        "mp4", "libx264", seconds=len(samples) / SAMPLE_RATE, audio=(samples[None], SAMPLE_RATE)
    )
    result = client.audio.transcriptions.create(model="whisper-1", file=("clip.mp4", payload))
    assert words(result.text) == clip.words

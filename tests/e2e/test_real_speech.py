"""Real speech with real Whisper weights: jfk.wav and espeak-ng speech through whisper base.

The model is OpenAI's multilingual base, converted from faster-whisper's CTranslate2 files by
`whisper-api models import` once per test run (tests/conftest.py). Every request goes to one server
with one context, so requests run one at a time at base's full speed.

The word times are checked against tests/fixtures/jfk_reference.json: faster-whisper's word
timestamps for the same weights, each boundary checked by hand against the signal's energy.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import openai
import pytest

from tests.e2e.conftest import API_KEY, Server, start_server, stop_server
from tests.e2e.test_live import finals, live, messages_until_close, run, send_audio, text
from tests.e2e.test_realtime import pcm16_24k
from tests.support.media import UPLOAD_FORMATS, encode_audio, encode_video, pcm_wav
from training.sentences import words
from training.speech import Voice, espeak_available, synthesize
from whisper_api.audio import SAMPLE_RATE, decode_audio

pytestmark = pytest.mark.real_weights

REFERENCE = json.loads((Path(__file__).parent.parent / "fixtures" / "jfk_reference.json").read_text())
#: "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your
#: country."
SENTENCE: str = REFERENCE["text"]
#: What whisper base says, greedy, as whisper.cpp decodes it: the sentence without two of its commas.
BASE_SAYS = (
    "And so my fellow Americans ask not what your country can do for you, "
    "ask what you can do for your country."
)
#: The same with flash attention off, as this module's server runs (it times words by DTW, which needs
#: it off): the rounding differs, and the first comma comes back.
BASE_SAYS_WITHOUT_FLASH_ATTENTION = BASE_SAYS.replace("Americans", "Americans,")
#: How far a word's start or end may be from the reference's.
WORD_TOLERANCE_S = 0.3
#: "ask not what your country can do for you,": 4.3 s of jfk.wav between two pauses, to keep the
#: nine containers' requests short.
ASK_NOT = (3.2, 7.52)
ONCE = {"temperature_increment_on_fallback": 0}
AUTH = {"Authorization": f"Bearer {API_KEY}"}
GERMAN = "Guten Morgen. Heute ist das Wetter schön, und wir gehen im Park spazieren."
SPANISH = "Buenos días. Hoy hace buen tiempo y vamos a pasear por el parque."


@pytest.fixture(scope="module")
def real_server(
    real_base_model: Path, vad_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """whisper base as the default model, with Silero VAD for live streams, timing words by DTW."""
    directory = tmp_path_factory.mktemp("real-models")
    (directory / "ggml-base.bin").symlink_to(real_base_model)
    (directory / vad_model.name).symlink_to(vad_model)
    running = start_server(
        directory,
        directory / "server.log",
        "--default-model base --contexts 1 --threads 2 --word-alignment dtw",
        env={"WHISPER_API_API_KEYS": API_KEY},
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def client(real_server: Server) -> openai.OpenAI:
    return real_server.client(timeout=120)


@pytest.fixture(scope="module")
def jfk(jfk_wav: Path) -> tuple[str, bytes, str]:
    return (jfk_wav.name, jfk_wav.read_bytes(), "audio/wav")


@pytest.fixture(scope="module")
def ask_not(jfk_wav: Path) -> np.ndarray:
    start, end = (round(seconds * SAMPLE_RATE) for seconds in ASK_NOT)
    return decode_audio(jfk_wav)[start:end]


def espeak(text: str, language: str) -> tuple[str, bytes, str]:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng): no German or Spanish speech")
    samples = synthesize(text, Voice(language, "m1", speed=150, pitch=50, word_gap=0))
    return (f"{language}.wav", pcm_wav(samples[None], SAMPLE_RATE), "audio/wav")


def cue_texts(subtitles: str) -> list[str]:
    """The text lines of SRT or VTT cues: everything but headers, numbers, timings and blank lines."""
    return [
        line
        for line in subtitles.splitlines()
        if line.strip() and line != "WEBVTT" and " --> " not in line and not line.strip().isdigit()
    ]


# -- the OpenAI API -----------------------------------------------------------------------------


def test_jfk_is_transcribed_as_the_sentence(client: openai.OpenAI, jfk: tuple[str, bytes, str]) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=jfk)
    assert words(result.text) == words(SENTENCE)
    assert result.text == BASE_SAYS_WITHOUT_FLASH_ATTENTION


def test_verbose_json_has_the_sentence_its_segments_and_english(
    client: openai.OpenAI, jfk: tuple[str, bytes, str]
) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=jfk, response_format="verbose_json")
    assert result.text == BASE_SAYS_WITHOUT_FLASH_ATTENTION
    assert words(" ".join(segment.text for segment in result.segments or [])) == words(SENTENCE)
    assert result.language == "english" and result.duration == pytest.approx(11.0)


@pytest.fixture(scope="module")
def timed_words(client: openai.OpenAI, jfk: tuple[str, bytes, str]) -> list[dict]:
    result = client.audio.transcriptions.create(
        model="whisper-1", file=jfk, response_format="verbose_json", timestamp_granularities=["word"]
    )
    return [word.model_dump() for word in result.words or []]


def test_timed_words_are_the_sentences_words(timed_words: list[dict]) -> None:
    assert [word for timed in timed_words for word in words(timed["word"])] == words(SENTENCE)


def test_word_times_are_within_three_tenths_of_a_second_of_the_reference(timed_words: list[dict]) -> None:
    off = {
        f"{got['word']}@{wanted['start']}": (round(got["start"], 2), round(got["end"], 2))
        for got, wanted in zip(timed_words, REFERENCE["words"], strict=True)
        if abs(got["start"] - wanted["start"]) > WORD_TOLERANCE_S
        or abs(got["end"] - wanted["end"]) > WORD_TOLERANCE_S
    }
    assert off == {}


def test_word_times_are_in_order(timed_words: list[dict]) -> None:
    starts = [word["start"] for word in timed_words]
    assert starts == sorted(starts)
    assert all(word["start"] <= word["end"] for word in timed_words)


@pytest.mark.parametrize("response_format", ["srt", "vtt"])
def test_subtitle_cues_hold_the_sentence(
    client: openai.OpenAI, jfk: tuple[str, bytes, str], response_format: Literal["srt", "vtt"]
) -> None:
    subtitles = client.audio.transcriptions.create(
        model="whisper-1", file=jfk, response_format=response_format
    )
    assert words(" ".join(cue_texts(subtitles))) == words(SENTENCE)


def test_streamed_deltas_join_to_the_sentence(client: openai.OpenAI, jfk: tuple[str, bytes, str]) -> None:
    events = list(client.audio.transcriptions.create(model="whisper-1", file=jfk, stream=True))
    deltas = "".join(event.delta for event in events if event.type == "transcript.text.delta")
    assert words(deltas) == words(SENTENCE)
    assert events[-1].type == "transcript.text.done" and events[-1].text == BASE_SAYS_WITHOUT_FLASH_ATTENTION


@pytest.mark.parametrize("name", sorted(UPLOAD_FORMATS))
def test_every_container_and_codec_carries_the_words(
    client: openai.OpenAI, ask_not: np.ndarray, name: str
) -> None:
    payload = encode_audio(ask_not[None], SAMPLE_RATE, UPLOAD_FORMATS[name])
    # The language given: what is checked is the decoding of the upload, not another detection pass.
    result = client.audio.transcriptions.create(
        model="whisper-1", file=(name, payload), language="en", extra_body=ONCE
    )
    assert words(result.text) == words("ask not what your country can do for you")


def test_a_video_soundtrack_carries_the_words(client: openai.OpenAI, ask_not: np.ndarray) -> None:
    seconds = len(ask_not) / SAMPLE_RATE
    payload = encode_video("mp4", "libx264", seconds=seconds, audio=(ask_not[None], SAMPLE_RATE))
    result = client.audio.transcriptions.create(
        model="whisper-1", file=("clip.mp4", payload), language="en", extra_body=ONCE
    )
    assert words(result.text) == words("ask not what your country can do for you")


# -- language ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("speech", "language"), [("jfk", "en"), (GERMAN, "de"), (SPANISH, "es")], ids=["en", "de", "es"]
)
def test_the_language_endpoint_names_the_spoken_language(
    real_server: Server, jfk: tuple[str, bytes, str], speech: str, language: str
) -> None:
    upload = jfk if speech == "jfk" else espeak(speech, language)
    response = httpx.post(
        f"{real_server.base_url}/v1/audio/language", headers=AUTH, files={"file": upload}, timeout=60
    )
    assert response.status_code == 200, response.text
    assert response.json()["language_code"] == language


def test_german_speech_is_transcribed_as_german_without_being_told(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1", file=espeak(GERMAN, "de"), response_format="verbose_json", extra_body=ONCE
    )
    assert result.language == "german"
    assert words(result.text)[:3] == ["guten", "morgen", "heute"]


def quiet(kind: str, seconds: float) -> np.ndarray:
    """Digital silence, or a faint hiss (white noise at -40 dBFS)."""
    count = round(seconds * SAMPLE_RATE)
    if kind == "silence":
        return np.zeros(count, dtype=np.float32)
    return (np.random.default_rng(0).standard_normal(count) * 0.01).astype(np.float32)


@pytest.mark.parametrize("kind", ["silence", "hiss"])
def test_no_speech_with_the_language_given_is_transcribed_as_nothing(
    client: openai.OpenAI, kind: str
) -> None:
    """whisper hears something in 5 s of silence or hiss ("[BLANK_AUDIO]", "you", a made-up sentence);
    openai-whisper and faster-whisper answer "", as this does once the window's no-speech probability is
    measured on that window (whisper.cpp's own is left over from an earlier pass when the language is
    given)."""
    audio = ("quiet.wav", pcm_wav(quiet(kind, 5)[None], SAMPLE_RATE), "audio/wav")
    result = client.audio.transcriptions.create(model="whisper-1", file=audio, language="en")
    assert result.text == ""


def test_a_silent_window_before_speech_adds_nothing_and_speech_is_likely_speech(
    client: openai.OpenAI, jfk_wav: Path
) -> None:
    audio = np.concatenate([quiet("silence", 31), decode_audio(jfk_wav)])
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=("late.wav", pcm_wav(audio[None], SAMPLE_RATE), "audio/wav"),
        language="en",
        response_format="verbose_json",
    )
    assert words(result.text) == words(SENTENCE)
    assert result.segments and all(segment.start >= 30 for segment in result.segments)
    assert all(segment.no_speech_prob < 0.2 for segment in result.segments)


# -- whisper-asr-webservice's API ---------------------------------------------------------------


def test_asr_never_answers_silence_with_whisper_cpp_s_blank_audio_marker(real_server: Server) -> None:
    """A silent stretch sent as Bazarr sends audio. whisper-asr-webservice's engines suppress non-speech
    tokens (suppress_tokens=-1) by default; without that whisper.cpp writes "[BLANK_AUDIO]", which Bazarr
    would save as a subtitle line."""
    params = {"task": "transcribe", "language": "en", "output": "srt", "encode": "false"}
    silence = {"audio_file": bytes(2 * SAMPLE_RATE)}
    url = f"{real_server.base_url}/asr"
    response = httpx.post(url, params=params, files=silence, headers=AUTH, timeout=120)
    assert response.status_code == 200, response.text
    assert "BLANK_AUDIO" not in response.text


# -- Deepgram's API -----------------------------------------------------------------------------


def test_listen_gives_the_sentences_words(real_server: Server, jfk_wav: Path) -> None:
    response = httpx.post(
        f"{real_server.base_url}/v1/listen",
        headers={"Authorization": f"Token {API_KEY}", "Content-Type": "audio/wav"},
        content=jfk_wav.read_bytes(),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    alternative = response.json()["results"]["channels"][0]["alternatives"][0]
    assert words(alternative["transcript"]) == words(SENTENCE)
    assert [word["word"] for word in alternative["words"]] == words(SENTENCE)


def test_live_streaming_of_jfk_gives_the_sentences_words(real_server: Server, jfk_wav: Path) -> None:
    async def scenario() -> list[dict]:
        async with live(real_server) as connection:
            await send_audio(connection, jfk_wav.read_bytes())
            await connection.send(json.dumps({"type": "CloseStream"}))
            return await messages_until_close(connection)

    results = finals(run(scenario()))
    assert words(" ".join(text(result) for result in results)) == words(SENTENCE)


# -- OpenAI's realtime API ---------------------------------------------------------------------------


def test_the_openai_sdks_realtime_client_transcribes_jfk(real_server: Server, jfk_wav: Path) -> None:
    # jfk.wav as OpenAI's input audio (24 kHz 16-bit PCM), then silence that ends the turn.
    samples = np.concatenate([decode_audio(jfk_wav), np.zeros(2 * SAMPLE_RATE, dtype=np.float32)])
    audio = pcm16_24k(samples)
    # jfk pauses for up to 1.2 s: a turn that waits longer is the whole sentence, one transcription.
    one_turn: Any = {
        "type": "transcription",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 1500}}},
    }

    async def scenario() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=f"{real_server.base_url}/v1", api_key=API_KEY, max_retries=0)
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
            events = [await connection.recv()]
            await connection.session.update(session=one_turn)
            # Faster than real time: turns are found on the audio's own clock, not the wall clock's.
            for start in range(0, len(audio), 4800):
                chunk = base64.b64encode(audio[start : start + 4800]).decode()
                await connection.input_audio_buffer.append(audio=chunk)
            # Answered after every append before it, so every turn has been committed by then.
            await connection.session.update(session={"type": "transcription"})
            while count(events, "session.updated") < 2 or count(events, "committed") > count(
                events, "completed"
            ):
                events.append(await connection.recv())
            return events

    events = run(scenario())
    assert events[0].type == "session.created" and events[0].session.type == "transcription"
    kinds = [event.type.rpartition(".")[2] for event in events if "session" not in event.type]
    assert kinds[:4] == ["speech_started", "speech_stopped", "committed", "added"]
    assert kinds[-1] == "completed" and set(kinds[4:-1]) == {"delta"}
    completed = events[-1]
    assert words(completed.transcript) == words(SENTENCE)
    assert completed.usage.type == "duration" and completed.usage.seconds == pytest.approx(11, abs=1)


def count(events: list[Any], ending: str) -> int:
    return sum(event.type.endswith(ending) for event in events)

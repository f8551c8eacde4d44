"""The `openai` package, unchanged but for base_url, against a real server process."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import openai
import pytest
from openai.types.audio import (
    Transcription,
    TranscriptionTextDeltaEvent,
    TranscriptionTextDoneEvent,
    TranscriptionVerbose,
    Translation,
)

from tests.e2e.conftest import API_KEY, Server
from tests.support.waiting import wait_until

MODEL = "whisper-1"
MiB = 2**20
#: The synthetic models never pass whisper's fallback checks, so every window would be decoded six
#: times over; one test below keeps the defaults, the rest ask for a single pass (the SDK's extra_body).
FAST = {"temperature_increment_on_fallback": 0}


def test_json_response_parses_into_the_sdk_transcription_type(client: openai.OpenAI, jfk_wav: Path) -> None:
    result = client.audio.transcriptions.create(model=MODEL, file=jfk_wav, extra_body=FAST)
    assert isinstance(result, Transcription)
    assert result.text
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 11
    assert [language.code for language in result.languages or []] == ["en"]


def test_text_response_is_the_plain_transcript(client: openai.OpenAI, jfk_wav: Path) -> None:
    text = client.audio.transcriptions.create(
        model=MODEL, file=jfk_wav, response_format="text", extra_body=FAST
    )
    as_json = client.audio.transcriptions.create(model=MODEL, file=jfk_wav, extra_body=FAST)
    assert isinstance(text, str)
    assert text.strip() == as_json.text


def test_srt_response_numbers_cues_with_comma_milliseconds(client: openai.OpenAI, jfk_wav: Path) -> None:
    srt = client.audio.transcriptions.create(
        model=MODEL, file=jfk_wav, response_format="srt", extra_body=FAST
    )
    lines = srt.splitlines()
    assert lines[0] == "1"
    assert " --> " in lines[1] and lines[1][8] == ","


def test_vtt_response_starts_with_the_webvtt_header(client: openai.OpenAI, jfk_wav: Path) -> None:
    vtt = client.audio.transcriptions.create(
        model=MODEL, file=jfk_wav, response_format="vtt", extra_body=FAST
    )
    assert vtt.startswith("WEBVTT")
    assert " --> " in vtt and "." in vtt.split(" --> ")[1][:12]


def test_verbose_json_segments_carry_every_field_the_sdk_requires(
    client: openai.OpenAI, jfk_wav: Path
) -> None:
    result = client.audio.transcriptions.create(
        model=MODEL, file=jfk_wav, response_format="verbose_json", extra_body=FAST
    )
    assert isinstance(result, TranscriptionVerbose)
    assert result.language == "english"
    assert result.duration == pytest.approx(11.0, abs=0.01)
    assert result.segments
    for segment in result.segments:
        assert 0 <= segment.start <= segment.end <= result.duration + 0.01
        assert segment.tokens and all(isinstance(token, int) for token in segment.tokens)
        assert segment.avg_logprob <= 0
        assert segment.compression_ratio > 0
        assert 0 <= segment.no_speech_prob <= 1
    assert result.words is None


def test_word_granularity_returns_top_level_words_inside_their_segments(
    client: openai.OpenAI, jfk_wav: Path
) -> None:
    result = client.audio.transcriptions.create(
        model=MODEL,
        file=jfk_wav,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        extra_body=FAST,
    )
    assert result.words
    starts = [word.start for word in result.words]
    assert starts == sorted(starts)
    assert all(word.start <= word.end for word in result.words)
    first, last = result.segments[0], result.segments[-1]
    assert first.start <= result.words[0].start and result.words[-1].end <= last.end
    assert all(word.word == word.word.strip() and word.word for word in result.words)


def test_gpt_transcribes_keywords_and_languages_are_taken(client: openai.OpenAI, jfk_wav: Path) -> None:
    # Fields of the SDK's newest model (the keywords join the prompt: test_forms.py).
    result = client.audio.transcriptions.create(
        model="mini",
        file=jfk_wav,
        keywords=["Kennedy", "fellow Americans"],
        languages=["de"],
        response_format="verbose_json",
        extra_body=FAST,
    )
    extras = result.model_extra or {}
    assert result.language == "german" and extras["language_probability"] == 1.0  # named, not detected


def test_language_is_detected_on_a_multilingual_model(client: openai.OpenAI, jfk_wav: Path) -> None:
    result = client.audio.transcriptions.create(
        model="mini", file=jfk_wav, response_format="verbose_json", extra_body=FAST
    )
    extras = result.model_extra or {}
    assert result.language.isalpha() and len(result.language) > 2  # a full English name, like OpenAI
    assert len(extras["language_code"]) == 2
    assert 0 < extras["language_probability"] <= 1


def test_streaming_deltas_join_to_the_done_text(client: openai.OpenAI, long_wav: Path) -> None:
    stream = client.audio.transcriptions.create(model=MODEL, file=long_wav, stream=True, extra_body=FAST)
    events = list(stream)
    deltas = [event.delta for event in events if event.type == "transcript.text.delta"]
    done = [event for event in events if event.type == "transcript.text.done"]
    assert len(deltas) >= 3  # one per segment; 66 s is at least three windows
    assert len(done) == 1 and events[-1] is done[0]
    assert done[0].text == "".join(deltas)


def test_a_gpt_4o_transcribe_stream_with_logprobs_carries_each_deltas_own_tokens(
    client: openai.OpenAI, jfk_wav: Path
) -> None:
    stream = client.audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=jfk_wav, stream=True, include=["logprobs"], extra_body=FAST
    )
    *deltas, done = list(stream)
    assert deltas and all(isinstance(event, TranscriptionTextDeltaEvent) for event in deltas)
    assert isinstance(done, TranscriptionTextDoneEvent) and done.logprobs
    assert all(delta.logprobs for delta in deltas)
    assert [p.token for d in deltas for p in d.logprobs or []] == [p.token for p in done.logprobs]


def test_first_delta_arrives_while_whisper_is_still_running(server: Server, very_long_wav: Path) -> None:
    client = server.client()
    with client.audio.transcriptions.with_streaming_response.create(
        model=MODEL, file=very_long_wav, stream=True, extra_body=FAST
    ) as response:
        # Held in a name: a line iterator dropped after its first line would close the response.
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
        assert "transcript.text.delta" in first
        assert server.metric("whisper_api_in_flight") >= 1
    # Hanging up aborts the rest (test_limits.py), so the tests after this one get the contexts back;
    # that the stream ends with its done event is test_streaming_deltas_join_to_the_done_text's.
    wait_until(lambda: server.metric("whisper_api_in_flight") == 0, what="the hung-up stream's abort")


def test_translation_parses_into_the_sdk_translation_type(client: openai.OpenAI, jfk_wav: Path) -> None:
    result = client.audio.translations.create(model="mini", file=jfk_wav, extra_body=FAST)
    assert isinstance(result, Translation)
    assert result.text


def test_translation_with_an_english_only_model_is_refused_with_the_reason(
    client: openai.OpenAI, jfk_wav: Path
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.translations.create(model="mini.en", file=jfk_wav)
    assert "English-only" in raised.value.message
    assert raised.value.body["param"] == "model"


def test_models_are_listed_with_openai_fields_and_extras(client: openai.OpenAI) -> None:
    models = {model.id: model for model in client.models.list()}
    assert {"ggml-mini", "ggml-mini.en"} <= set(models)
    english = models["ggml-mini.en"]
    assert english.object == "model" and english.owned_by and english.created > 0
    extras = english.model_extra or {}
    assert extras["multilingual"] is False and extras["size_bytes"] > 0 and extras["loaded"] is True
    assert extras["weight_type"] == "f16" and extras["family"] is None  # mini dimensions are no real family


@pytest.mark.parametrize(
    "alias",
    ["ggml-mini.en", "mini.en", "ggml-mini.en.bin", "whisper-1", "gpt-4o-transcribe", "gpt-transcribe"],
)
def test_model_aliases_resolve_to_the_model_file(client: openai.OpenAI, alias: str) -> None:
    assert client.models.retrieve(alias).id == "ggml-mini.en"


def test_unknown_model_raises_not_found(client: openai.OpenAI, jfk_wav: Path) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.audio.transcriptions.create(model="large-v9", file=jfk_wav)
    assert raised.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("large-v9")


def test_missing_api_key_raises_authentication_error(server: Server, jfk_wav: Path) -> None:
    with pytest.raises(openai.AuthenticationError) as raised:
        server.client(api_key="sk-wrong").audio.transcriptions.create(model=MODEL, file=jfk_wav)
    assert raised.value.code == "invalid_api_key"


def test_logprobs_are_included_when_asked(client: openai.OpenAI, jfk_wav: Path) -> None:
    result = client.audio.transcriptions.create(
        model=MODEL, file=jfk_wav, include=["logprobs"], extra_body=FAST
    )
    assert result.logprobs
    assert all(entry.logprob <= 0 and entry.bytes for entry in result.logprobs)


def test_verbose_json_carries_logprobs_when_asked(client: openai.OpenAI, jfk_wav: Path) -> None:
    result = client.audio.transcriptions.create(
        model=MODEL, file=jfk_wav, response_format="verbose_json", include=["logprobs"], extra_body=FAST
    )
    logprobs = (result.model_extra or {})["logprobs"]
    tokens = [token for segment in result.segments or [] for token in segment.tokens]
    assert logprobs and all(entry["logprob"] <= 0 for entry in logprobs)
    assert len(logprobs) <= len(tokens)  # the text tokens, not the timestamps and specials around them


def test_an_upload_over_the_limit_by_its_content_length_gets_the_413_once_it_is_sent(server: Server) -> None:
    # As Node's fetch (so the OpenAI Node SDK) sends a file it holds: the whole body, then it reads the
    # answer. Answered and closed while it was still writing, it had the connection reset under it and
    # reported a connection error (and retried) instead of the 413.
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + bytes(30 * MiB)
    connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
    connection.request(
        "POST",
        "/v1/audio/transcriptions",
        body=body + b"\r\n--b--\r\n",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "multipart/form-data; boundary=b"},
    )
    response = connection.getresponse()
    assert response.status == 413 and json.loads(response.read())["error"]["code"] == "file_too_large"
    connection.close()


def test_files_auto_paginate_oldest_first_with_order_asc(client: openai.OpenAI, jfk_wav: Path) -> None:
    audio = jfk_wav.read_bytes()
    # Distinct bytes: the same content would be one file.
    made = [
        client.files.create(file=(f"order-{n}.wav", audio + bytes(n + 1)), purpose="user_data").id
        for n in range(3)
    ]
    # limit=1: the SDK's iterator fetches each next page with after=<last id>, in the order asked for.
    oldest_first = [file.id for file in client.files.list(limit=1, order="asc") if file.id in made]
    newest_first = [file.id for file in client.files.list(limit=1, order="desc") if file.id in made]
    assert oldest_first == made and newest_first == made[::-1]

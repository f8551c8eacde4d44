"""Deepgram's own Python SDK (deepgram-sdk 7) against /v1/listen and its live socket, pointed at the service
by its environment setting and nothing else; assertions are on the SDK's typed objects."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pydantic
from deepgram import DeepgramClient
from deepgram.core.events import EventType
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1.types import (
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)
from deepgram.types.listen_v1accepted_response import ListenV1AcceptedResponse
from deepgram.types.listen_v1response import ListenV1Response

from tests.e2e.conftest import API_KEY, Server
from tests.support.http_files import file_server
from tests.support.spoken import spoken_clips
from tests.support.waiting import wait_until
from training.sentences import words
from whisper_api.audio import SAMPLE_RATE

CLIP = spoken_clips()["en-1"]
#: One decoding pass per window, as the other live tests ask for, through the SDK's own extra-query option.
ONE_PASS = {"additional_query_parameters": {"temperature_increment_on_fallback": "0"}}


def sdk(server: Server) -> DeepgramClient:
    address = f"{server.host}:{server.port}"
    environment = DeepgramClientEnvironment(
        base=f"http://{address}", production=f"ws://{address}", agent="", agent_rest=""
    )
    return DeepgramClient(api_key=API_KEY, environment=environment)


def linear16(speech: np.ndarray, seconds_of_silence_after: float) -> bytes:
    samples = np.concatenate([speech, np.zeros(round(seconds_of_silence_after * SAMPLE_RATE))])
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def strictly(message: pydantic.BaseModel) -> pydantic.BaseModel:
    """The message as the SDK's model validates it: the SDK falls back to an unchecked object when
    validation fails, so a missing or mistyped field would otherwise go unnoticed here."""
    return type(message).model_validate(message.model_dump())


def test_a_file_comes_back_as_the_sdks_typed_response(trained_server: Server) -> None:
    answer = sdk(trained_server).listen.v1.media.transcribe_file(
        request=CLIP.path.read_bytes(),
        model="nova-3",
        language="en-US",
        smart_format=True,
        utterances=True,
        tag="sdk-test",
        request_options=ONE_PASS,
    )
    assert isinstance(answer, ListenV1Response)
    strictly(answer)
    alternative = answer.results.channels[0].alternatives[0]
    assert words(alternative.transcript) == CLIP.words
    assert [w.word for w in alternative.words] == CLIP.words
    assert all(0 <= w.start < w.end <= answer.metadata.duration for w in alternative.words)
    assert words(alternative.paragraphs.transcript) == CLIP.words  # smart_format includes paragraphs
    assert words(" ".join(u.transcript for u in answer.results.utterances)) == CLIP.words
    assert answer.metadata.tags == ["sdk-test"] and answer.metadata.models[0] in answer.metadata.model_info


def test_a_callback_request_is_accepted_at_once_and_its_transcript_posted_to_the_url(
    trained_server: Server,
) -> None:
    with file_server() as receiver:
        accepted = sdk(trained_server).listen.v1.media.transcribe_file(
            request=CLIP.path.read_bytes(), callback=receiver.url("/hook"), request_options=ONE_PASS
        )
        assert isinstance(accepted, ListenV1AcceptedResponse)
        delivery = wait_until(lambda: receiver.received and receiver.received[0], what="the callback")
    answer = ListenV1Response.model_validate_json(delivery.body)
    assert answer.metadata.request_id == accepted.request_id == delivery.headers["dg-request-id"]
    assert words(answer.results.channels[0].alternatives[0].transcript) == CLIP.words


def test_a_live_stream_comes_back_as_the_sdks_typed_events_in_order(trained_server: Server) -> None:
    received: list[Any] = []
    closed = threading.Event()
    with sdk(trained_server).listen.v1.connect(
        model="nova-3",
        encoding="linear16",
        sample_rate=SAMPLE_RATE,
        vad_events="true",
        utterance_end_ms=1000,
        request_options=ONE_PASS,
    ) as connection:
        connection.on(EventType.MESSAGE, received.append)
        connection.on(EventType.CLOSE, lambda _: closed.set())
        threading.Thread(target=connection.start_listening, daemon=True).start()
        audio = linear16(CLIP.samples(), seconds_of_silence_after=1.5)
        for start in range(0, len(audio), 3200):
            connection.send_media(audio[start : start + 3200])
        connection.send_keep_alive()
        connection.send_finalize()
        connection.send_close_stream()
        assert closed.wait(60)
    for message in received:
        strictly(message)
    kinds = [type(message) for message in received]
    assert kinds[0] is ListenV1Metadata and kinds[-1] is ListenV1Metadata and ListenV1SpeechStarted in kinds
    results = [m for m in received if isinstance(m, ListenV1Results) and m.is_final]
    spoken, finalized = results
    assert spoken.speech_final and not spoken.from_finalize
    assert [w.word for w in spoken.channel.alternatives[0].words] == CLIP.words
    assert finalized.from_finalize and finalized.channel.alternatives[0].transcript == ""
    # UtteranceEnd comes after the result of the words it ends, which clients flush on it.
    assert kinds.index(ListenV1UtteranceEnd) > received.index(spoken)
    assert received[-1].duration >= CLIP.samples().size / SAMPLE_RATE


def test_a_client_that_leaves_right_after_close_stream_costs_no_error(trained_server: Server) -> None:
    def streamed() -> float:
        return trained_server.metric("whisper_api_user_audio_seconds_total", surface="listen.live")

    before, errors = streamed(), trained_server.log().count("unhandled_error")
    with sdk(trained_server).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=SAMPLE_RATE, request_options=ONE_PASS
    ) as connection:
        # A second of speech: its result is still being transcribed when the client has gone.
        connection.send_media(linear16(CLIP.samples()[:SAMPLE_RATE], seconds_of_silence_after=0.5))
        connection.send_close_stream()
    wait_until(lambda: streamed() > before, what="the stream's usage recorded as it ends")
    assert trained_server.log().count("unhandled_error") == errors

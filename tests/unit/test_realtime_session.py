"""The realtime transcription session's settings, as the beta and GA update events carry them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.http.realtime import InvalidEvent, SessionSettings, Vad, minted, restored, stored, updated

FORMATS = {"pcm16": {"type": "audio/pcm", "rate": 24000}, "g711_ulaw": {"type": "audio/pcmu"}}
turn_detections = st.none() | st.fixed_dictionaries(
    {"type": st.just("server_vad")},
    optional={
        "threshold": st.floats(0, 1),
        "prefix_padding_ms": st.integers(0, 10_000),
        "silence_duration_ms": st.integers(1, 60_000),
    },
)
transcriptions = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["whisper-1", "base"]),
        "language": st.sampled_from(["en", "de"]),
        "prompt": st.text(max_size=20),
    },
)


def beta(**session: Any) -> bytes:
    return json.dumps({"type": "transcription_session.update", "session": session}).encode()


def ga(**audio_input: Any) -> bytes:
    session = {"type": "transcription", "audio": {"input": audio_input}}
    return json.dumps({"type": "session.update", "session": session}).encode()


@given(st.sampled_from(sorted(FORMATS)), transcriptions, turn_detections)
def test_beta_and_ga_updates_of_the_same_settings_agree(
    audio_format: str, transcription: dict[str, Any], turn_detection: dict[str, Any] | None
) -> None:
    from_beta = updated(
        SessionSettings(),
        beta(
            input_audio_format=audio_format,
            input_audio_transcription=transcription,
            turn_detection=turn_detection,
        ),
        "beta",
    )
    from_ga = updated(
        SessionSettings(),
        ga(format=FORMATS[audio_format], transcription=transcription, turn_detection=turn_detection),
        "ga",
    )
    assert from_beta == from_ga


@given(st.floats(0, 1))
def test_an_update_keeps_every_setting_it_does_not_name(threshold: float) -> None:
    before = SessionSettings(
        format="g711_alaw", rate=8000, language="de", turn_detection=Vad(silence_duration_ms=900)
    )
    after = updated(before, ga(turn_detection={"type": "server_vad", "threshold": threshold}), "ga")
    assert after == SessionSettings(
        format="g711_alaw",
        rate=8000,
        language="de",
        turn_detection=Vad(threshold=threshold, silence_duration_ms=900),
    )


@pytest.mark.parametrize(
    ("event", "param"),
    [
        (ga(format={"type": "audio/pcmu", "rate": 16000}), "session.audio.input.format.rate"),
        (ga(transcription={"languages": ["en", "de"]}), "session.audio.input.transcription.languages"),
        (ga(turn_detection={"type": "server_vad", "surprise": 1}), "session.audio.input.turn_detection"),
        (beta(input_audio_format="mp3"), "session.input_audio_format"),
        (beta(include=["item.input_audio_transcription.everything"]), "session.include"),
    ],
    ids=["g711-rate", "two-languages", "unknown-field", "beta-format", "include"],
)
def test_what_the_service_cannot_honour_is_refused_naming_the_parameter(event: bytes, param: str) -> None:
    dialect = "beta" if b"transcription_session" in event else "ga"
    with pytest.raises(InvalidEvent) as refused:
        updated(SessionSettings(), event, dialect)
    assert refused.value.param == param


#: The names a session update uses, so that generated events reach past the first level of checks.
_KEYS = st.sampled_from(
    [
        "type",
        "audio",
        "input",
        "format",
        "rate",
        "transcription",
        "model",
        "language",
        "languages",
        "prompt",
        "keywords",
        "turn_detection",
        "threshold",
        "prefix_padding_ms",
        "silence_duration_ms",
        "include",
        "input_audio_format",
        "input_audio_transcription",
        "noise_reduction",
    ]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_KEYS | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.sampled_from(["beta", "ga"]), json_values)
def test_any_session_update_is_taken_or_refused_as_an_invalid_event(dialect: Any, session: Any) -> None:
    kind = "transcription_session.update" if dialect == "beta" else "session.update"
    event = json.dumps({"type": kind, "session": session}).encode()
    try:
        assert isinstance(updated(SessionSettings(), event, dialect), SessionSettings)
    except InvalidEvent as refused:
        assert refused.message


# -- a client secret's session, as the app's server asks for it ------------------------------------


def test_a_client_secret_lives_openais_default_unless_its_request_says() -> None:
    assert minted(b"", "ga") == (SessionSettings(), 600)
    assert minted(b"{}", "beta") == (SessionSettings(), 60)
    assert minted(b'{"expires_after": {"anchor": "created_at", "seconds": 30}}', "ga")[1] == 30
    assert (
        minted(b'{"client_secret": {"expires_at": {"anchor": "created_at", "seconds": 30}}}', "beta")[1] == 30
    )


@pytest.mark.parametrize(
    ("body", "dialect", "param"),
    [
        (b'{"expires_after": {"seconds": 7201}}', "ga", "expires_after.seconds"),
        (b'{"session": {"type": "realtime"}}', "ga", "session.type"),
        (b'{"session": {"type": "transcription", "include": ["x"]}}', "ga", "session.include"),
        (b'{"input_audio_format": "mp3"}', "beta", "input_audio_format"),
        (
            b'{"input_audio_transcription": {"languages": ["en", "de"]}}',
            "beta",
            "input_audio_transcription.languages",
        ),
    ],
    ids=["too-long", "realtime-session", "include", "beta-format", "two-languages"],
)
def test_a_client_secrets_session_is_refused_as_an_update_would_be_naming_the_parameter(
    body: bytes, dialect: Any, param: str
) -> None:
    with pytest.raises(InvalidEvent) as refused:
        minted(body, dialect)
    assert refused.value.param == param


def test_the_ga_session_of_a_client_secret_is_what_the_same_update_makes() -> None:
    session = {
        "type": "transcription",
        "audio": {"input": {"format": FORMATS["g711_ulaw"], "turn_detection": None}},
    }
    event = json.dumps({"type": "session.update", "session": session}).encode()
    assert minted(json.dumps({"session": session}).encode(), "ga")[0] == updated(
        SessionSettings(), event, "ga"
    )


@given(st.sampled_from(["beta", "ga"]), json_values)
def test_any_client_secret_request_is_taken_or_refused_as_an_invalid_event(dialect: Any, body: Any) -> None:
    try:
        settings, seconds = minted(json.dumps(body).encode(), dialect)
    except InvalidEvent as refused:
        assert refused.message
    else:
        assert restored(stored(settings)) == settings and 10 <= seconds <= 7200

"""whisper-asr-webservice's API (POST /asr, /detect-language) as its clients call it, on real speech:
the trained model, so the words themselves can be checked."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import API_KEY, Server
from tests.support.media import pcm_wav
from tests.support.spoken import Spoken, spoken_clips
from training.sentences import words
from whisper_api.audio import SAMPLE_RATE

CLIPS = spoken_clips()
AUTHORIZATION = {"Authorization": f"Bearer {API_KEY}"}
#: faster-whisper's Segment, field for field, which whisper-asr-webservice writes as json.
SEGMENT_FIELDS = [
    "id",
    "seek",
    "start",
    "end",
    "text",
    "tokens",
    "avg_logprob",
    "compression_ratio",
    "no_speech_prob",
    "words",
    "temperature",
]


@pytest.fixture(scope="module")
def api(trained_server: Server) -> httpx.Client:
    with httpx.Client(base_url=trained_server.base_url, headers=AUTHORIZATION, timeout=60) as client:
        yield client


def asr(api: httpx.Client, clip: Spoken, **params: str) -> httpx.Response:
    upload = {"audio_file": (clip.path.name, clip.path.read_bytes(), "audio/flac")}
    return api.post("/asr", params=params, files=upload)


def test_json_is_the_language_faster_whisper_segments_and_the_text(api: httpx.Client) -> None:
    clip = CLIPS["en-1"]
    response = asr(api, clip, output="json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-disposition"] == 'attachment; filename="en-1.flac.json"'
    body = response.json()
    assert list(body) == ["language", "segments", "text"]
    assert body["language"] == "en" and words(body["text"]) == clip.words
    assert [list(segment) for segment in body["segments"]] == [SEGMENT_FIELDS] * len(body["segments"])
    assert [segment["id"] for segment in body["segments"]] == list(range(1, len(body["segments"]) + 1))
    assert all(segment["words"] is None for segment in body["segments"])


def spoken_text(output: str, body: str) -> str:
    """The text lines of a txt, vtt, srt or tsv body."""
    blocks = body.removeprefix("WEBVTT\n\n").strip().split("\n\n")
    match output:
        case "vtt":
            lines = [block.split("\n")[1] for block in blocks]
        case "srt":
            lines = [block.split("\n")[2] for block in blocks]
        case "tsv":
            lines = [row.split("\t")[2] for row in body.splitlines()[1:]]
        case _:
            lines = body.splitlines()
    return " ".join(lines)


@pytest.mark.parametrize(
    ("output", "shape"),
    [
        (None, r"([^\n]*\n)+"),  # txt, the default
        ("text", r"([^\n]*\n)+"),  # txt as whisper-asr-webservice's documentation spells it
        # Hours only from an hour on, as whisper-asr-webservice writes them.
        ("vtt", r"WEBVTT\n\n(\d\d:\d\d\.\d{3} --> \d\d:\d\d\.\d{3}\n[^\n]+\n\n)+"),
        ("srt", r"(\d+\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n[^\n]+\n\n)+"),
        ("tsv", r"start\tend\ttext\n(\d+\t\d+\t[^\t\n]+\n)+"),
    ],
)
def test_each_text_output_has_its_shape_and_the_words(
    api: httpx.Client, output: str | None, shape: str
) -> None:
    clip = CLIPS["en-2"]
    response = asr(api, clip, **({"output": output} if output else {}))
    assert response.status_code == 200, response.text
    named = output or "txt"
    assert response.headers["content-disposition"] == f'attachment; filename="en-2.flac.{named}"'
    assert response.headers["asr-engine"] == "whisper_cpp"
    assert re.fullmatch(shape, response.text), response.text
    assert words(spoken_text(named, response.text)) == clip.words


def test_clients_of_v1_1_sending_its_method_parameter_are_answered(api: httpx.Client) -> None:
    """whisper-asr-webservice 1.1 chose its implementation with `method`; later versions ignore it,
    and clients written then still send it."""
    clip = CLIPS["es-1"]
    upload = {"audio_file": (clip.path.name, clip.path.read_bytes())}
    response = api.post("/detect-language", params={"method": "faster-whisper"}, files=upload)
    assert response.status_code == 200, response.text
    assert response.json()["language_code"] == "es"


def test_bazarr_passing_the_video_name_gets_the_language_then_the_subtitles(api: httpx.Client) -> None:
    """Bazarr's Whisper provider, its requests as it sends them with "pass video name" on: headerless
    samples from its ffmpeg step, and `video_file`, the video's path on its own machine (for subgen,
    which reads it there), which names nothing here."""
    clip = CLIPS["en-4"]
    samples = (np.clip(clip.samples(), -1, 1) * 32767).astype("<i2").tobytes()
    video = {"video_file": "/media/tv/Show/Season 1/Show - S01E01.mkv"}
    detected = api.post(
        "/detect-language", params={"encode": "false", **video}, files={"audio_file": samples}
    )
    assert detected.status_code == 200, detected.text
    assert detected.json()["language_code"] == "en"
    params = {"task": "transcribe", "language": "en", "output": "srt", "encode": "false", **video}
    subtitles = api.post("/asr", params=params, files={"audio_file": samples})
    assert subtitles.status_code == 200, subtitles.text
    assert words(spoken_text("srt", subtitles.text)) == clip.words


def test_options_sent_as_form_fields_count_and_other_fields_are_ignored(api: httpx.Client) -> None:
    """whisper-asr-webservice reads only `audio_file` from the form; clients that send options there
    (`-F language=en`) mean them, and other fields (a part's `type`) are dropped, as there."""
    clip = CLIPS["en-4"]
    upload = {"audio_file": (clip.path.name, clip.path.read_bytes())}
    response = api.post("/asr", data={"output": "json", "type": "audio/flac"}, files=upload)
    assert response.status_code == 200, response.text
    assert words(response.json()["text"]) == clip.words


def test_a_key_in_the_server_url_lets_clients_without_a_key_setting_in(trained_server: Server) -> None:
    """Bazarr's Whisper provider, like whisper-asr-webservice, knows no keys: its endpoint setting can
    carry one as a URL's password (http://bazarr:KEY@host:8000), which HTTP clients send as Basic auth."""
    clip = CLIPS["en-3"]
    upload = {"audio_file": (clip.path.name, clip.path.read_bytes())}
    host = trained_server.base_url.removeprefix("http://")
    answers = [
        httpx.post(f"http://bazarr:{key}@{host}/detect-language", files=upload, timeout=60)
        for key in (API_KEY, "not-the-key")
    ]
    assert [answer.status_code for answer in answers] == [200, 401]
    assert answers[0].json()["language_code"] == "en"


def test_headerless_uploads_are_held_to_the_duration_limit_not_the_upload_limit(api: httpx.Client) -> None:
    """Bazarr sends a whole episode as 16 kHz s16le samples: past the 25 MiB upload limit after 13
    minutes, well within the hour of audio a request may hold. Such an upload is read (here, to find
    its language refused), not refused for its size."""
    episode = np.zeros(14 * 60 * SAMPLE_RATE, dtype="<i2").tobytes()
    assert len(episode) > 25 * 2**20
    params = {"encode": "false", "language": "xx"}
    response = api.post("/asr", params=params, files={"audio_file": episode})
    assert response.status_code == 400 and "'xx'" in response.json()["detail"]


def test_encode_false_takes_headerless_16_khz_samples(api: httpx.Client) -> None:
    clip = CLIPS["en-3"]
    samples = (np.clip(clip.samples(), -1, 1) * 32767).astype("<i2").tobytes()
    response = api.post(
        "/asr", params={"encode": "false", "output": "json"}, files={"audio_file": ("en-3.pcm", samples)}
    )
    assert response.status_code == 200, response.text
    assert words(response.json()["text"]) == clip.words


def test_word_timestamps_give_each_segment_its_timed_words(api: httpx.Client) -> None:
    clip = CLIPS["en-1"]
    body = asr(api, clip, output="json", word_timestamps="true").json()
    timed = [word for segment in body["segments"] for word in segment["words"]]
    assert words(" ".join(word["word"] for word in timed)) == clip.words
    assert all(set(word) == {"start", "end", "word", "probability"} for word in timed)
    assert all(a["start"] <= b["start"] for a, b in itertools.pairwise(timed))


def test_vad_filter_transcribes_the_speech_after_a_silence(api: httpx.Client) -> None:
    clip = CLIPS["en-4"]
    padded = np.concatenate([np.zeros(2 * SAMPLE_RATE, dtype=np.float32), clip.samples()])
    upload = {"audio_file": ("padded.wav", pcm_wav(padded[None], SAMPLE_RATE), "audio/wav")}
    body = api.post("/asr", params={"vad_filter": "true", "output": "json"}, files=upload).json()
    assert words(body["text"]) == clip.words
    assert body["segments"][0]["start"] >= 1.5


def test_subtitle_options_wrap_the_cues(api: httpx.Client) -> None:
    clip = CLIPS["en-1"]
    response = asr(api, clip, output="srt", max_line_width="12", max_line_count="1")
    assert response.status_code == 200, response.text
    cues = response.text.strip().split("\n\n")
    lines = [cue.split("\n")[2:] for cue in cues]
    assert all(len(cue_lines) == 1 and len(cue_lines[0]) <= 12 for cue_lines in lines)
    assert words(" ".join(line for cue_lines in lines for line in cue_lines)) == clip.words


def test_detect_language_names_the_language_its_code_and_how_sure(api: httpx.Client) -> None:
    clip = CLIPS["es-2"]
    response = api.post("/detect-language", files={"audio_file": ("es-2.flac", clip.path.read_bytes())})
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["detected_language", "language_code", "confidence"]
    assert body["detected_language"] == "spanish" and body["language_code"] == "es"
    assert 0.5 < body["confidence"] <= 1


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"output": "docx"}, "output"),
        ({"task": "summarise"}, "task"),
        ({"diarize": "true"}, "diarize"),
        ({"diarize": "false", "min_speakers": "2"}, "min_speakers"),
        ({"beam_size": "5"}, "beam_size"),
        ({"output": "json", "max_line_width": "20"}, "max_line_width"),
        ({"language": "xx"}, "xx"),
    ],
)
def test_what_cannot_be_honoured_is_refused_as_fastapi_does_naming_it(
    api: httpx.Client, params: dict[str, str], named: str
) -> None:
    response = asr(api, CLIPS["en-2"], **params)
    assert response.status_code == 400
    assert list(response.json()) == ["detail"] and named in response.json()["detail"]


def test_an_upload_under_another_name_is_refused_as_fastapi_does(api: httpx.Client) -> None:
    response = api.post("/asr", files={"file": ("en-2.flac", CLIPS["en-2"].path.read_bytes())})
    assert response.status_code == 400 and "audio_file" in response.json()["detail"]


def test_audio_sent_as_the_whole_body_is_refused_naming_the_form_field(api: httpx.Client) -> None:
    response = api.post("/asr", content=CLIPS["en-2"].path.read_bytes())
    assert response.status_code == 400 and "'audio_file'" in response.json()["detail"]


def test_the_seed_dlt_pipeline_loads_asr_and_detect_language_into_duckdb(
    trained_server: Server, tmp_path: Path
) -> None:
    """Seed 000's pipeline, pointed at this service. Its resources are listed as GETs, but both
    endpoints take a POST with the audio (as the seed says): that, and the audio, are all it adds."""
    duckdb = pytest.importorskip("duckdb")
    dlt = pytest.importorskip("dlt")
    from dlt.sources.rest_api import rest_api_resources

    clip = CLIPS["en-1"]
    audio = {"audio_file": (clip.path.name, clip.path.read_bytes(), "audio/flac")}
    form = httpx.Request("POST", "http://form", files=audio)
    body, content_type = form.read(), form.headers["content-type"]

    def endpoint(path: str, **params: str) -> dict:
        return {
            "path": path,
            "method": "POST",
            "params": params,
            "data": body,
            "headers": {"Content-Type": content_type},
            "paginator": "single_page",
            "data_selector": "$",
        }

    @dlt.source
    def whisper_asr_source(token: str = API_KEY):  # the seed's source, its base URL this server's
        config = {
            "client": {"base_url": f"{trained_server.base_url}/", "auth": {"type": "bearer", "token": token}},
            "resources": [
                {"name": "detect_language", "endpoint": endpoint("detect-language")},
                {"name": "asr", "endpoint": endpoint("asr", output="json")},
            ],
        }
        yield from rest_api_resources(config)

    database = tmp_path / "whisper_asr.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name="whisper_asr_pipeline",
        destination=dlt.destinations.duckdb(str(database)),
        dataset_name="whisper_asr_data",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    info = pipeline.run(whisper_asr_source())
    assert not info.has_failed_jobs
    with duckdb.connect(str(database), read_only=True) as db:
        language = db.execute("select detected_language, language_code from whisper_asr_data.detect_language")
        assert language.fetchall() == [("english", "en")]
        text = db.execute("select language, text from whisper_asr_data.asr").fetchall()
        assert len(text) == 1 and text[0][0] == "en" and words(text[0][1]) == clip.words
        segments = db.execute("select count(*) from whisper_asr_data.asr__segments").fetchone()
        assert segments is not None and segments[0] >= 1

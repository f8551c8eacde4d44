"""The OpenAPI document (the app's own, as /docs/openapi.json serves it) declares what the routes read:
the request body of every route that reads one, in each media type it takes, the API key as a bearer
scheme (Deepgram's `Token` too on /v1/listen), and the Retry-After header of every 429."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from whisper_api.http.app import create_app
from whisper_api.http.forms import SUBTITLE_FIELDS, transcription_fields
from whisper_api.settings import Settings

RAW = {"audio/*", "application/octet-stream"}
FORM = "multipart/form-data"
JSON = "application/json"
#: The routes whose handlers read the body themselves, and the media types each takes.
BODIES = {
    "/v1/audio/transcriptions": {FORM},
    "/v1/audio/translations": {FORM},
    "/v1/audio/language": {FORM, *RAW},
    "/v1/detect-language": {FORM, *RAW},
    "/v1/listen": {JSON, *RAW},
    "/v1/files": {FORM},
    "/v1/transcription-jobs": {FORM, JSON},
}
#: Open without a key, like any probe.
PROBES = {"/ping", "/health", "/ready", "/metrics"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("openapi")
    settings = Settings(models_dir=directory / "models", data_dir=directory / "data", preload=False)
    return create_app(settings).openapi_schema.to_schema()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def body(document: dict[str, Any], path: str, media_type: str) -> dict[str, Any]:
    """The schema of `path`'s POST body in `media_type`, references resolved at the top."""
    schema = document["paths"][path]["post"]["requestBody"]["content"][media_type]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


@pytest.mark.parametrize("path", BODIES)
def test_a_route_that_reads_a_body_declares_each_media_type_it_takes(
    document: dict[str, Any], path: str
) -> None:
    request_body = document["paths"][path]["post"]["requestBody"]
    assert request_body["required"] is True
    assert set(request_body["content"]) == BODIES[path]


@pytest.mark.parametrize("path", [path for path, types in BODIES.items() if types >= RAW])
def test_raw_audio_is_a_binary_body(document: dict[str, Any], path: str) -> None:
    for media_type in RAW:
        assert body(document, path, media_type) | {"description": ""} == {
            "type": "string",
            "format": "binary",
            "description": "",
        }


@pytest.mark.parametrize("path", [path for path, types in BODIES.items() if FORM in types])
def test_a_form_has_its_file_field(document: dict[str, Any], path: str) -> None:
    file = body(document, path, FORM)["properties"]["file"]
    assert file.get("items", file)["format"] == "binary"


def test_the_transcription_form_declares_only_fields_the_handler_reads(document: dict[str, Any]) -> None:
    declared = set(body(document, "/v1/audio/transcriptions", FORM)["properties"]) - {"file"}
    assert declared <= transcription_fields()
    assert {
        "model",
        "language",
        "response_format",
        "timestamp_granularities[]",
        "chunking_strategy",
    } <= declared


def test_files_take_one_or_more_files(document: dict[str, Any]) -> None:
    form = body(document, "/v1/files", FORM)
    assert form["required"] == ["file"]
    assert form["properties"]["file"]["type"] == "array" and form["properties"]["file"]["minItems"] == 1


def test_a_job_takes_the_same_fields_as_a_form_or_as_json(document: dict[str, Any]) -> None:
    form = set(body(document, "/v1/transcription-jobs", FORM)["properties"])
    as_json = set(body(document, "/v1/transcription-jobs", JSON)["properties"])
    assert {name.removesuffix("[]") for name in form} == as_json | {"file"}
    assert {"file_id", "url", "callback_url", "formats", "task"} <= as_json


def test_a_job_declares_none_of_the_fields_it_refuses(document: dict[str, Any]) -> None:
    for media_type in (FORM, JSON):
        declared = set(body(document, "/v1/transcription-jobs", media_type)["properties"])
        assert declared.isdisjoint({*SUBTITLE_FIELDS, "stream"})


def test_listen_takes_raw_audio_or_a_json_url_alone(document: dict[str, Any]) -> None:
    url = body(document, "/v1/listen", JSON)
    assert url["required"] == ["url"] and url["additionalProperties"] is False


def test_listen_declares_deepgrams_query_parameters(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/v1/listen"]["post"]["parameters"]
    query = {parameter["name"] for parameter in parameters if parameter["in"] == "query"}
    assert {"model", "language", "response_format", "encoding", "sample_rate", "start"} <= query


def test_the_key_is_a_bearer_scheme_every_route_but_the_probes_wants(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["apiKey"] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "description": "",
    }
    assert document["security"] == [{"apiKey": []}]
    for path in PROBES:
        assert document["paths"][path]["get"]["security"] == [{}]


def test_listen_takes_deepgrams_token_too(document: dict[str, Any]) -> None:
    token = document["components"]["securitySchemes"]["deepgramToken"]
    assert (token["type"], token["in"], token["name"]) == ("apiKey", "header", "Authorization")
    assert document["paths"]["/v1/listen"]["post"]["security"] == [{"apiKey": []}, {"deepgramToken": []}]


def test_every_429_declares_its_retry_after_header(document: dict[str, Any]) -> None:
    busy = {
        path: operation["responses"]["429"]
        for path, _, operation in operations(document)
        if "429" in operation.get("responses", {})
    }
    # Every route that queues a transcription answers 429 when the queue is full.
    assert set(BODIES) - {"/v1/files", "/v1/transcription-jobs"} <= set(busy)
    for path, response in busy.items():
        header = response.get("headers", {}).get("Retry-After")
        assert header is not None and header["required"] is True, path
        assert header["schema"] == {"type": "integer", "minimum": 1}, path


def test_swagger_fills_no_form_field_with_a_value_the_server_refuses(document: dict[str, Any]) -> None:
    """Swagger UI's "Try it out" puts a sample in every form field that has no default or example (the
    word "string", a number's minimum; ["string"] in an array of free strings) and sends it; a field with
    neither gets a working example, or an empty one (not sent)."""
    for path, types in BODIES.items():
        if FORM not in types:
            continue
        for name, field in body(document, path, FORM)["properties"].items():
            if field.get("format") == "binary" or "enum" in field:
                continue
            if field.get("type") == "array":
                free = "enum" not in field["items"] and field["items"].get("format") != "binary"
                assert not free or field.get("example") == [], (path, name)
                continue
            assert "default" in field or field.get("example") in ("", "whisper-1", "auto", "-1"), (path, name)

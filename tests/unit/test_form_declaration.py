"""The transcription form is declared once: what the OpenAPI document publishes, what the handlers
accept and what the README documents are the same rules."""

from __future__ import annotations

import re

import pytest
from litestar.openapi.spec import Schema

from tests.conftest import REPO_ROOT
from whisper_api.http.errors import ApiError
from whisper_api.http.forms import (
    MAX_PROMPT_CHARS,
    FormField,
    TranscriptionFormFields,
    declared_fields,
    parse_fields,
)
from whisper_api.http.openapi import TranscriptionOperation

README = (REPO_ROOT / "README.md").read_text()
#: OpenAI's own fields, which the README lists in prose above its table of whisper's knobs.
OPENAI_FIELDS = {"model", "prompt", "response_format", "temperature", "stream", "language"}
DECLARED = {field.name: field for field in declared_fields(TranscriptionFormFields)}
_ROW = re.compile(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|$")
_RANGE = re.compile(r"(-?\d+(?:\.\d+)?)–(-?\d+(?:\.\d+)?)")


def readme_knobs() -> dict[str, tuple[str, str]]:
    """The README's table of request fields: name → (default, range), as written."""
    section = README.split("### Request fields", 1)[1].split("\n### ", 1)[0]
    rows = (_ROW.match(line) for line in section.splitlines())
    return {row[1]: (row[2].strip(), row[3].strip()) for row in rows if row}


def published() -> dict[str, Schema]:
    body = TranscriptionOperation().request_body
    assert body is not None and body.content is not None
    schema = body.content["multipart/form-data"].schema
    assert isinstance(schema, Schema) and schema.properties is not None
    return {name: prop for name, prop in schema.properties.items() if isinstance(prop, Schema)}


def accepts(name: str, value: object) -> bool:
    try:
        # srt: the subtitle fields apply to it, and every other field to any format.
        parse_fields({name: [str(value)], "response_format": ["srt"]}, "transcribe")
    except ApiError as error:
        assert error.status == 400 and error.body.error.param == name
        return False
    return True


def test_the_readme_table_lists_every_declared_knob() -> None:
    assert set(readme_knobs()) == set(DECLARED) - OPENAI_FIELDS


@pytest.mark.parametrize("name", sorted(set(DECLARED) - OPENAI_FIELDS))
def test_the_readme_gives_each_knobs_declared_range_and_default(name: str) -> None:
    default, documented = readme_knobs()[name]
    field = DECLARED[name]
    if field.kind is bool:
        assert (documented, default) == ("bool", str(field.default).lower())
        return
    if field.kind is str:
        assert field.default is None and default == "—"
        return
    low, high = (float(bound) for bound in _RANGE.findall(documented)[0])
    if field.zero_or_at_least is not None:
        assert documented.startswith("0, or ") and (0, field.zero_or_at_least) == (field.low, low)
    else:
        assert low == field.low
    assert high == field.high
    if field.default is None:  # left to whisper.cpp, or not applied at all
        assert default in ("greedy", "whisper.cpp's", "—")
    else:
        assert float(default) == field.default


def test_the_readme_gives_the_prompt_limit() -> None:
    assert f"A `prompt` may be up to {MAX_PROMPT_CHARS}" in README
    assert f"{MAX_PROMPT_CHARS} characters at most together" in README


def _edges(field: FormField, schema: Schema) -> list[tuple[float, bool]]:
    """Values at and just beyond the published bounds, with whether the schema allows each."""
    step = 1 if field.kind is int else 1e-6
    assert isinstance(schema.minimum, int | float) and isinstance(schema.maximum, int | float)
    edges = [(schema.minimum, True), (schema.maximum, True)]
    edges += [(schema.minimum - step, False), (schema.maximum + step, False)]
    if isinstance(schema.schema_not, Schema):
        gap = schema.schema_not.exclusive_maximum
        assert isinstance(gap, float)
        edges += [(gap / 2, False), (gap, True)]
    return edges


@pytest.mark.parametrize("name", sorted(n for n, f in DECLARED.items() if f.kind in (int, float)))
def test_the_published_bounds_of_each_number_are_the_ones_enforced(name: str) -> None:
    schema = published()[name]
    for value, allowed in _edges(DECLARED[name], schema):
        shown = str(int(value)) if DECLARED[name].kind is int else repr(value)
        assert accepts(name, shown) is allowed, (name, value)


@pytest.mark.parametrize("name", ["prompt", "initial_prompt"])
def test_the_published_prompt_length_is_the_one_enforced(name: str) -> None:
    limit = published()[name].max_length
    assert limit == MAX_PROMPT_CHARS
    assert accepts(name, "a" * MAX_PROMPT_CHARS) and not accepts(name, "a" * (MAX_PROMPT_CHARS + 1))


def test_the_published_defaults_are_the_ones_applied() -> None:
    applied = parse_fields({}, "transcribe").options
    for name, schema in published().items():
        if schema.default is not None and hasattr(applied, name):
            assert getattr(applied, name) == schema.default, name

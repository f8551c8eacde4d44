"""Seed 004's UUIDs are this service's ids written another way: UUIDv7-shaped, and read back exactly."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.http.routes.api_v1 import ids
from whisper_api.jobs.store import new_id

KINDS = [ids.FILE, ids.JOB, ids.USER, ids.SESSION, ids.TOKEN]
hex_digits = st.text("0123456789abcdef", min_size=28, max_size=28)
kinds = st.sampled_from(KINDS)


@given(kinds, hex_digits)
def test_an_id_reads_back_from_its_uuid(kind: ids.Kind, digits: str) -> None:
    internal = kind.prefix + digits
    assert kind.internal(kind.public(internal)) == internal


@given(kinds, hex_digits)
def test_the_uuid_is_a_version_7_rfc_9562_uuid(kind: ids.Kind, digits: str) -> None:
    public = kind.public(kind.prefix + digits)
    parsed = uuid.UUID(public)
    assert public == parsed.hex
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)


@given(kinds, st.lists(hex_digits, min_size=2, max_size=2, unique=True))
def test_uuids_sort_as_the_ids_do(kind: ids.Kind, digits: list[str]) -> None:
    """Ids sort by creation (their clock comes first), and so do the seed's UUIDs."""
    internal = sorted(kind.prefix + d for d in digits)
    assert [kind.public(i) for i in internal] == sorted(kind.public(i) for i in internal)


@pytest.mark.parametrize(("made_as", "read_as"), [(a, b) for a in KINDS for b in KINDS if a is not b])
def test_one_kinds_uuid_names_nothing_of_another_kind(made_as: ids.Kind, read_as: ids.Kind) -> None:
    public = made_as.public(made_as.prefix + new_id("")[-28:])
    assert read_as.internal(public) == read_as.prefix + public  # 32 digits: no id we make


def test_uuids_are_read_in_either_case() -> None:
    internal = new_id("job_")
    assert ids.JOB.internal(ids.JOB.public(internal).upper()) == internal


def test_ids_of_another_shape_are_shown_and_read_as_they_are() -> None:
    assert ids.USER.public("user_operator") == "user_operator"
    assert ids.USER.internal("user_operator") == "user_operator"


def test_our_own_form_of_an_id_is_accepted_too() -> None:
    internal = new_id("file-")
    assert ids.FILE.internal(internal) == internal


@given(st.text(max_size=64))
def test_anything_else_is_an_invalid_id(text: str) -> None:
    """Whatever is accepted names a file id: no path, quote or control character gets through."""
    try:
        internal = ids.FILE.internal(text)
    except ids.InvalidId:
        return
    assert internal.startswith("file-") and internal.replace("-", "").replace("_", "").isalnum()

"""Seed 004's ids: 32 hex digits laid out as UUIDv7, each one of this service's ids written another way.

Our ids are a prefix naming the kind, a 48-bit millisecond clock and 64 random bits (`new_id` in
jobs/store.py). A UUIDv7 starts with the same clock and has 74 bits free after its version and
variant digits: room for the 64 random bits and a byte saying what kind of id it is. So each id maps
to one UUID and back with nothing stored, and the UUIDs sort by creation as the seed promises.

Layout: clock (12 digits) · `7` · random[0:3] · `8` · random[3:16] · kind (2 digits).

Ids of another shape (the operator's account, keys made before accounts existed) are shown as they
are, and read back as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CLOCK_AND_RANDOM = r"(?P<clock>[0-9a-f]{12})(?P<random>[0-9a-f]{16})"
_PUBLIC = re.compile(
    r"(?P<clock>[0-9a-f]{12})7(?P<head>[0-9a-f]{3})8(?P<tail>[0-9a-f]{13})(?P<tag>[0-9a-f]{2})"
)
#: Any UUID without hyphens: one that is not of our making names nothing here (a 404, not a 400).
_UUID = re.compile(r"[0-9a-f]{32}")
#: What an id of another shape may look like: a word, an underscore or dash, letters and digits.
_OTHER = re.compile(r"[a-z]+[-_][0-9a-z]{1,40}")


class InvalidId(ValueError):
    """Not an id of the kind asked for (the seed's "Invalid UUID format")."""


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of id: our prefix, and the byte its UUIDs end with."""

    prefix: str
    tag: int

    def public(self, internal_id: str) -> str:
        match = re.fullmatch(re.escape(self.prefix) + _CLOCK_AND_RANDOM, internal_id)
        if match is None:
            return internal_id
        random = match["random"]
        return f"{match['clock']}7{random[:3]}8{random[3:]}{self.tag:02x}"

    def is_one(self, public_id: str) -> bool:
        """Whether `public_id` is one of this kind's UUIDs."""
        match = _PUBLIC.fullmatch(public_id.lower())
        return match is not None and int(match["tag"], 16) == self.tag

    def internal(self, public_id: str) -> str:
        """The id `public_id` stands for; InvalidId if it is not a UUID or an id of ours. A UUID that
        is not one of this kind's stands for an id no record has (ours have 28 hex digits, not 32)."""
        uuid = public_id.lower()
        if self.is_one(uuid):
            match = _PUBLIC.fullmatch(uuid)
            assert match is not None
            return f"{self.prefix}{match['clock']}{match['head']}{match['tail']}"
        if _UUID.fullmatch(uuid):
            return self.prefix + uuid
        if _OTHER.fullmatch(public_id) and public_id.startswith(self.prefix):
            return public_id
        raise InvalidId(public_id)


FILE = Kind("file-", 0x01)
JOB = Kind("job_", 0x02)
USER = Kind("user_", 0x03)
SESSION = Kind("", 0x04)
TOKEN = Kind("", 0x05)

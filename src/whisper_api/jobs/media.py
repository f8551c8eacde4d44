"""Uploaded audio on disk, addressed by content: the same bytes are stored once, whoever sends them.

The directory may be local (one machine) or storage every node mounts (NFS, a cloud file share):
files appear whole or not at all (written aside, then renamed), so a worker on another machine
never reads half an upload.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


def digest(data: bytes) -> str:
    """The content's address."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class StoredMedia:
    sha256: str
    size_bytes: int


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes, sha256: str | None = None) -> StoredMedia:
        """Store `data` under its address; `sha256` is that address when the caller has already taken it
        (an upload's, for its owner's quota), so hundreds of megabytes are not hashed twice."""
        address = sha256 or digest(data)
        target = self.path(address)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".upload-", delete=False) as partial:
                partial.write(data)
                partial.flush()
                os.fsync(partial.fileno())
            os.replace(partial.name, target)
        return StoredMedia(address, len(data))

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def remove(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

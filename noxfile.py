"""Developer sessions: `nox -s tests`, `nox -s lint`, `nox -s bench`."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """What .ci/run checks before the tests: ruff's rules and format, and mypy over src/."""
    session.install("-e", ".[test]")
    paths = ("src", "tests", "bench", "training", "noxfile.py", "examples")
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("mypy")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks print ratios against baselines measured in the same run (see bench/README.md)."""
    session.install("-e", ".[test]")
    for script in session.posargs or ["overhead", "head_of_line", "throughput", "decode_cost"]:
        session.run("python", "-m", f"bench.{script}")

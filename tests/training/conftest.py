"""Tests of the training pipeline; they need PyTorch, which the service does not.

Without PyTorch each module is reported as skipped, with the reason, rather than left out of the run.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

import pytest

HAVE_TORCH = importlib.util.find_spec("torch") is not None
SKIP_REASON = "PyTorch is not installed (pip install -r training/requirements.txt): pipeline untested"

if HAVE_TORCH:
    from tests.training.fixtures import *  # noqa: F403  (registers the fixtures)


class _NeedsTorch(pytest.Module):
    """A test module that is not imported (its imports need torch) and reports itself skipped."""

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        pytest.skip(SKIP_REASON)


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if HAVE_TORCH:
        return None
    return _NeedsTorch.from_parent(parent, path=module_path)

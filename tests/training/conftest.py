"""Tests of the training pipeline; they need PyTorch, which the service does not (without it, none run)."""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError:
    collect_ignore_glob = ["test_*.py"]
else:
    from tests.training.fixtures import *  # noqa: F403  (registers the fixtures)

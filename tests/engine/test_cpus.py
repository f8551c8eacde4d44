"""How many cores whisper.cpp's threads may keep busy: the affinity, capped by a container's CPU quota."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.engine.cpus import available_cores, cpu_quota

ROOT = Path("/sys/fs/cgroup")


def files(tree: dict[str, str]):
    """A cgroup filesystem of `tree` (paths under ROOT → contents) for `cpu_quota` to read."""
    return lambda path: tree.get(str(path.relative_to(ROOT)))


def test_a_cgroup_v2_limit_is_its_quota_over_its_period() -> None:
    assert cpu_quota("0::/kubepods/pod1\n", files({"kubepods/pod1/cpu.max": "150000 100000\n"})) == 1.5


def test_a_cgroup_v2_max_is_no_limit() -> None:
    assert cpu_quota("0::/user.slice\n", files({"user.slice/cpu.max": "max 100000\n"})) is None


def test_a_cgroup_v1_quota_is_read_from_the_cpu_controller() -> None:
    tree = {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "100000\n",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    }
    assert cpu_quota("4:cpu,cpuacct:/docker/abc\n2:memory:/docker/abc\n", files(tree)) == 1.0


def test_a_cgroup_v1_quota_of_minus_one_is_no_limit() -> None:
    tree = {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}
    assert cpu_quota("1:cpu:/\n", files(tree)) is None


def test_a_parents_tighter_limit_binds_its_child() -> None:
    tree = {"a/cpu.max": "50000 100000", "a/b/cpu.max": "400000 100000"}
    assert cpu_quota("0::/a/b\n", files(tree)) == 0.5


def test_inside_a_container_the_mounts_own_root_holds_the_limit() -> None:
    """Without a cgroup namespace, /proc/self/cgroup names the host's path, which the container's mount
    does not have."""
    tree = {"cpu/cpu.cfs_quota_us": "200000", "cpu/cpu.cfs_period_us": "100000"}
    assert cpu_quota("3:cpu:/docker/0123abcd\n", files(tree)) == 2.0


@given(cgroups=st.text(), contents=st.text())
def test_no_cgroup_text_or_file_content_makes_it_raise(cgroups: str, contents: str) -> None:
    quota = cpu_quota(cgroups, lambda _path: contents)
    assert quota is None or quota > 0


def test_available_cores_is_never_more_than_the_affinity() -> None:
    assert 1 <= available_cores() <= len(os.sched_getaffinity(0))


V1_CPU = ROOT / "cpu"


@pytest.mark.skipif(
    not (V1_CPU / "cpu.cfs_quota_us").exists() or not os.access(V1_CPU, os.W_OK),
    reason="needs cgroup v1's cpu controller, writable (root)",
)
def test_a_process_in_a_cgroup_limited_to_one_cpu_counts_one_core() -> None:
    group = V1_CPU / f"whisper-api-test-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text("100000")
        # The child moves itself into the group before it asks.
        script = (
            f"open('{group / 'cgroup.procs'}', 'w').write(str(__import__('os').getpid())); "
            "from whisper_api.engine.cpus import available_cores; print(available_cores())"
        )
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        assert result.stdout.strip() == "1"
    finally:
        group.rmdir()

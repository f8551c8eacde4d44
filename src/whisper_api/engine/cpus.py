"""How many CPU cores this process can keep busy: its affinity, capped by a container's CPU quota.

whisper.cpp's threads spin while they wait for each other, so a thread count above what the process
may actually run costs far more than it gains. A container's cpuset shows in the affinity, but a CPU
limit (Kubernetes `resources.limits.cpu`, `docker run --cpus`) is a CFS quota that the affinity does
not show: on a 64-core host a 2-CPU container would otherwise run 64 threads per transcription.
Measured on the real base model (jfk.wav, 2 visible cores): under a 1-CPU quota, 2 threads take 2.5 s
and 1 thread 2.2 s; under a 1.5-CPU quota, 2 threads take 1.9 s and 1 thread 2.7 s, so a fractional
quota is rounded up, as Go's and the JVM's runtimes do.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath

__all__ = ["available_cores", "cpu_quota"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Where cgroup v1's cpu controller is mounted, by the usual names.
_V1_MOUNTS = ("cpu,cpuacct", "cpu", "cpuacct,cpu")

Read = Callable[[Path], "str | None"]


def available_cores() -> int:
    """The cores whisper.cpp's threads may keep busy: the affinity, capped by the CPU quota, at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = cpu_quota(_read(Path("/proc/self/cgroup")) or "", _read)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def cpu_quota(cgroups: str, read: Read, root: Path = CGROUP_ROOT) -> float | None:
    """The tightest CPU quota, in cores, on the cgroups that `cgroups` (/proc/self/cgroup's text) lists
    and their ancestors, cgroup v2's `cpu.max` and v1's `cpu.cfs_quota_us` alike; None if unlimited.

    Ancestors count because a limit set on a parent binds its children. Inside a container the listed
    path may be the host's, which does not exist under the container's own mount: the files that do
    exist (the mount's root, which is the container's cgroup) are what count. Unreadable or malformed
    files are skipped, never raised.
    """
    quotas: list[float] = []
    for line in cgroups.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            quotas += _each(root, path, lambda folder: _v2_quota(read(folder / "cpu.max")))
        elif "cpu" in controllers.split(","):
            for mount in _V1_MOUNTS:
                quotas += _each(root / mount, path, lambda folder: _v1_quota(folder, read))
    return min(quotas, default=None)


def _each(mount: Path, path: str, quota: Callable[[Path], float | None]) -> list[float]:
    """The quotas found on `path` and its ancestors under `mount`."""
    found = []
    relative = PurePosixPath("/", path).relative_to("/")
    for folder in (relative, *relative.parents):
        value = quota(mount / folder)
        if value is not None:
            found.append(value)
    return found


def _v2_quota(text: str | None) -> float | None:
    """`cpu.max`: "max 100000" (no limit) or "150000 100000" (1.5 CPUs)."""
    fields = (text or "").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1_quota(folder: Path, read: Read) -> float | None:
    """`cpu.cfs_quota_us` (-1 = no limit) over `cpu.cfs_period_us`."""
    quota, period = read(folder / "cpu.cfs_quota_us"), read(folder / "cpu.cfs_period_us")
    if quota is None or period is None:
        return None
    return _ratio(quota.strip(), period.strip())


def _ratio(quota: str, period: str) -> float | None:
    try:
        numerator, denominator = int(quota), int(period)
    except ValueError:
        return None
    if numerator <= 0 or denominator <= 0:
        return None
    return numerator / denominator


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None

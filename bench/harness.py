"""Reusable pieces for benchmarks: models, audio, servers to compare, timing and ratio reports.

Run from the repository root as modules (`python -m bench.<script>`): the synthetic-model
generator is imported from `tests.support`. `python -m bench.harness --selfcheck` exercises
everything here against jfk.wav.

Numbers from this machine are only meaningful relative to each other, so every report is a
ratio against a baseline measured in the same run; never assert on absolute times.
"""

from __future__ import annotations

import argparse
import atexit
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import IO, NamedTuple, Protocol, TypeVar

import httpx
import numpy as np

from tests.support.synthetic_model import BASE, TINY, Dimensions, write_synthetic_model

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE = REPO_ROOT / ".cache"
BENCH_MODELS = CACHE / "bench-models"
BENCH_AUDIO = CACHE / "bench-audio"
FIXTURES = Path(os.environ.get("WHISPER_API_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))
JFK_WAV = FIXTURES / "audio" / "jfk.wav"
SAMPLE_RATE = 16_000
#: The cores this process may run on: what `whisper-api serve` at its defaults gives a request alone.
CORES = len(os.sched_getaffinity(0))
GGML_MAGIC_BYTES = (0x67676D6C).to_bytes(4, "little")
_T = TypeVar("_T")

#: model id -> (header file in fixtures/models, dimensions). Ids follow the ggml-<id>.bin naming.
_MODEL_SPECS: dict[str, tuple[str, Dimensions]] = {
    "tiny.en": ("for-tests-ggml-tiny.en.bin", TINY),
    "base.en": ("for-tests-ggml-base.en.bin", BASE),
}


# --- models -------------------------------------------------------------------------------------


def make_models(dest: Path = BENCH_MODELS, names: Sequence[str] = ("tiny.en", "base.en")) -> dict[str, Path]:
    """Synthetic models with real dimensions (real compute cost, random text) as `dest`/ggml-<id>.bin.

    Files already present are reused: they are deterministic (fixed seed), and base.en takes a
    while to write.
    """
    models = {}
    for name in names:
        header, dims = _MODEL_SPECS[name]
        path = dest / f"ggml-{name}.bin"
        if not path.is_file():
            write_synthetic_model(FIXTURES / "models" / header, path, dims)
        models[name] = path
    return models


# --- audio --------------------------------------------------------------------------------------


def read_wav(path: Path = JFK_WAV) -> np.ndarray:
    """A 16 kHz mono 16-bit WAV as float32 in [-1, 1]."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit PCM")
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def long_clip(seconds: float) -> np.ndarray:
    """jfk.wav repeated a whole number of times until it lasts at least `seconds` (60 -> 66 s).

    Whole repeats, so no word is cut at the end and the text stays realistic speech.
    """
    jfk = read_wav(JFK_WAV)
    repeats = max(1, int(np.ceil(seconds * SAMPLE_RATE / jfk.size)))
    return np.tile(jfk, repeats)


def minute_clip() -> np.ndarray:
    """About a minute of speech (6 x jfk = 66 s)."""
    return long_clip(60)


def ten_minute_clip() -> np.ndarray:
    """About ten minutes of speech (55 x jfk = 605 s)."""
    return long_clip(600)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """Write float32 samples as 16 kHz mono 16-bit PCM WAV."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm.tobytes())
    return path


def write_mp3(path: Path, samples: np.ndarray, bitrate: int = 64_000) -> Path:
    """Encode float32 samples as 16 kHz mono MP3 (what clients typically upload)."""
    import av  # only this helper needs PyAV

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = bitrate
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32)[None, :], format="flt", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def bench_audio(name: str, make: Callable[[], np.ndarray]) -> Path:
    """`.cache/bench-audio/<name>` (`.wav` or `.mp3`) holding `make()`; written once, then reused."""
    path = BENCH_AUDIO / name
    if not path.is_file():
        writer = {".wav": write_wav, ".mp3": write_mp3}[path.suffix]
        partial = path.with_name(f".{name}.partial{path.suffix}")
        writer(partial, make())
        partial.replace(path)  # a run interrupted mid-write never leaves a truncated clip behind
    return path


def same_text(a: str, b: str) -> bool:
    """Transcripts equal up to whitespace (servers join segments differently): same decoding work."""
    return a.split() == b.split() or "".join(a.split()) == "".join(b.split())


# --- subprocess servers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_whisper_server(backend: str = "cpu") -> Path:
    """The whisper-server built by native/build_server.sh (or $WHISPER_SERVER_BIN)."""
    path = Path(os.environ.get("WHISPER_SERVER_BIN", CACHE / f"build-{backend}" / "bin" / "whisper-server"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; build it with: native/build_server.sh {backend}")
    return path


def _log_tail(log: IO[bytes], limit: int = 4000) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-limit:]


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, timeout: float, log: IO[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_log_tail(log)}")
        with suppress(httpx.TransportError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s:\n{_log_tail(log)}")


def _stop(process: subprocess.Popen[bytes], first_signal: signal.Signals, grace: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(first_signal)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def _server_process(
    command: list[str],
    ready_url: str,
    timeout: float,
    stop_signal: signal.Signals,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    # Output goes to a file, not a pipe: nobody reads a pipe while we benchmark, and a full one
    # would block the server. The file is shown if the server fails to start.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=None if env is None else {**os.environ, **env},
        )
        try:
            _wait_until_ready(process, ready_url, timeout, log)
            yield process
        finally:
            _stop(process, stop_signal)


class Transcribe(Protocol):
    """`transcribe(path, fields=None) -> (seconds, text)`; `fields` adds to or overrides the form's."""

    def __call__(self, path: Path | str, fields: Mapping[str, str] | None = None) -> tuple[float, str]: ...


def peak_rss_bytes(pid: int) -> int:
    """Peak resident memory of a live process so far (Linux: VmHWM in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


class _ServerUnderTest:
    """A server subprocess on a free local port; entering yields its `transcribe(path, fields)`.

    While entered, `process` is the server's process (for its pid, e.g. `peak_rss_bytes`).
    """

    process: subprocess.Popen[bytes]

    ready_path: str
    transcribe_path: str
    stop_signal: signal.Signals

    def __init__(
        self, timeout: float, extra_args: Sequence[str], env: Mapping[str, str] | None = None
    ) -> None:
        self.timeout = timeout
        self.extra_args = list(extra_args)
        self.env = env
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._stack = ExitStack()

    def command(self) -> list[str]:
        raise NotImplementedError

    def fields(self) -> dict[str, str]:
        raise NotImplementedError

    def __enter__(self) -> Transcribe:
        with ExitStack() as stack:
            ready_url = self.base_url + self.ready_path
            command = self.command() + self.extra_args
            server = _server_process(command, ready_url, self.timeout, self.stop_signal, self.env)
            self.process = stack.enter_context(server)
            client = stack.enter_context(httpx.Client(timeout=httpx.Timeout(3600.0, connect=10.0)))
            # Only once everything started does the stack move over to be closed by __exit__.
            self._stack = stack.pop_all()
        url, form = self.base_url + self.transcribe_path, self.fields()

        # httpx.Client is thread-safe: a throughput benchmark may call this from many threads.
        def transcribe(path: Path | str, fields: Mapping[str, str] | None = None) -> tuple[float, str]:
            path = Path(path)
            with path.open("rb") as audio:
                started = time.perf_counter()
                data = form if fields is None else {**form, **fields}
                response = client.post(url, data=data, files={"file": (path.name, audio)})
                elapsed = time.perf_counter() - started
            response.raise_for_status()
            return elapsed, response.json()["text"]

        return transcribe

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


class WhisperCppServer(_ServerUnderTest):
    """whisper.cpp's own whisper-server: the reference to compare against.

    `with WhisperCppServer(model, threads=2) as transcribe: seconds, text = transcribe(wav)`
    It serves one request at a time and takes WAV only (no --convert, which needs ffmpeg). Its
    defaults include flash attention on; `extra_args=["-nfa"]` turns it off. `env` adds environment
    variables, e.g. {"OMP_WAIT_POLICY": "active"}.
    """

    ready_path, transcribe_path, stop_signal = "/health", "/inference", signal.SIGTERM

    def __init__(
        self,
        model: Path,
        threads: int,
        binary: Path | None = None,
        timeout: float = 60.0,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(timeout, extra_args, env)
        self.model, self.threads = model, threads
        self.binary = binary or find_whisper_server()

    def command(self) -> list[str]:
        return [str(self.binary), "-m", str(self.model), "-t", str(self.threads),
                "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip

    def fields(self) -> dict[str, str]:
        # Its -nf flag is ignored; only the per-request temperature_inc=0 disables fallback.
        return {"temperature": "0", "temperature_inc": "0", "response_format": "json"}


class WhisperApiServer(_ServerUnderTest):
    """Our server, `whisper-api serve`, as a subprocess.

    `with WhisperApiServer(models_dir, "tiny.en", contexts=1, threads=2) as transcribe: ...`
    `contexts` or `threads` None leaves that flag out: the service picks its default for the machine.
    `extra_args` adds flags, e.g. ["--no-flash-attn"] (flash attention is on by default, as in
    whisper.cpp); `env` adds environment variables.
    """

    # SIGINT lets uvicorn shut down gracefully and the engine free its contexts.
    ready_path, transcribe_path, stop_signal = "/ready", "/v1/audio/transcriptions", signal.SIGINT

    def __init__(
        self,
        models_dir: Path,
        default_model: str,
        contexts: int | None,
        threads: int | None,
        timeout: float = 60.0,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(timeout, extra_args, env)
        self.models_dir, self.default_model = models_dir, default_model
        self.contexts, self.threads = contexts, threads

    def command(self) -> list[str]:
        # A data directory of its own: an account with a password in the user's would close the server.
        data_dir = tempfile.mkdtemp(prefix="bench-whisper-api-")
        command = [_whisper_api_executable(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--models-dir", str(self.models_dir), "--default-model", self.default_model,
                   "--data-dir", data_dir]  # fmt: skip
        for flag, value in (("--contexts", self.contexts), ("--threads", self.threads)):
            if value is not None:
                command += [flag, str(value)]
        return command

    def fields(self) -> dict[str, str]:
        # The language given, as whisper-server assumes it ("en"): a multilingual model (the real base)
        # would otherwise spend an encoder pass on detecting it.
        return {
            "model": self.default_model,
            "language": "en",
            "temperature": "0",
            "temperature_increment_on_fallback": "0",
            "response_format": "json",
        }


def _whisper_api_executable() -> str:
    # Prefer the script next to this interpreter, so the benchmark runs the venv's install.
    beside = Path(sys.executable).with_name("whisper-api")
    found = str(beside) if beside.is_file() else shutil.which("whisper-api")
    if found is None:
        raise FileNotFoundError("whisper-api not installed in this environment (pip install -e .)")
    return found


# --- in-process baseline ------------------------------------------------------------------------


class _DedicatedThread:
    """Runs submitted calls one after another on a single thread that lives as long as this object.

    Not a ThreadPoolExecutor: those refuse work once interpreter shutdown has begun, and the
    contexts must still be freed from an atexit handler. Daemon, so a forgotten close() cannot
    hang the interpreter's exit.
    """

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], object], Future[object]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            fn, future = call
            try:
                future.set_result(fn())
            except BaseException as error:
                future.set_exception(error)

    def call(self, fn: Callable[[], _T]) -> _T:
        future: Future[_T] = Future()
        self._calls.put((fn, future))  # type: ignore[arg-type]
        return future.result()

    def stop(self) -> None:
        self._calls.put(None)
        self._thread.join()


class InProcessWhisper:
    """One whisper.cpp context driven directly through `_pywhispercpp`: the no-overhead baseline.

    Every call runs on one dedicated long-lived thread: whisper.cpp's OpenMP thread pool belongs
    to the calling thread, so hopping threads would start extra pools and oversubscribe cores.
    """

    _log_users = 0
    _log_lock = threading.Lock()

    def __init__(
        self, model_path: Path, threads: int, flash_attn: bool | None = None, beam_size: int = 1
    ) -> None:
        """`flash_attn=None` keeps whisper.cpp's default (on), which is also whisper-server's."""
        import _pywhispercpp as pw

        self._pw = pw
        self.threads, self.beam_size = threads, beam_size
        self._thread = _DedicatedThread("whisper")
        self._silence_logs()
        try:
            self._ctx: object | None = self._thread.call(lambda: self._load(Path(model_path), flash_attn))
        except BaseException:
            self._thread.stop()
            self._restore_logs()
            raise
        self._params = self._decode_params()

    def _load(self, model_path: Path, flash_attn: bool | None) -> object:
        # The binding wraps a NULL context instead of raising, and using one crashes the process;
        # checking the file first catches the usual mistakes (wrong path, not a ggml model).
        with model_path.open("rb") as model:
            if model.read(4) != GGML_MAGIC_BYTES:
                raise ValueError(f"{model_path} is not a ggml whisper model")
        pw = self._pw
        params = pw.whisper_context_default_params()
        if flash_attn is not None:
            params.flash_attn = flash_attn
        return pw.whisper_init_from_file_with_params(str(model_path), params)

    def _decode_params(self) -> object:
        pw = self._pw
        strategy = pw.whisper_sampling_strategy
        if self.beam_size > 1:
            params = pw.whisper_full_default_params(strategy.WHISPER_SAMPLING_BEAM_SEARCH)
            params.beam_search = {"beam_size": self.beam_size, "patience": -1.0}
        else:
            params = pw.whisper_full_default_params(strategy.WHISPER_SAMPLING_GREEDY)
        params.n_threads = self.threads
        params.temperature = 0.0
        params.temperature_inc = 0.0  # no fallback re-decodes: same work as the servers are asked for
        params.print_progress = False
        params.print_realtime = False
        params.print_timestamps = False
        return params

    def _run(self, samples: np.ndarray, language: str) -> str:
        pw = self._pw
        self._params.language = language  # type: ignore[attr-defined]
        if pw.whisper_full(self._ctx, self._params, samples, samples.size) != 0:
            raise RuntimeError("whisper_full failed")
        count = pw.whisper_full_n_segments(self._ctx)
        # Joined before decoding: a multi-byte character may straddle two segments.
        return b"".join(pw.whisper_full_get_segment_text(self._ctx, i) for i in range(count)).decode(
            errors="replace"
        )

    def transcribe(self, samples: np.ndarray, language: str = "en") -> tuple[float, str]:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        started = time.perf_counter()
        text = self._thread.call(lambda: self._run(samples, language))
        return time.perf_counter() - started, text

    def close(self) -> None:
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            self._thread.call(lambda: self._pw.whisper_free(ctx))
            self._thread.stop()
            self._restore_logs()

    def __enter__(self) -> InProcessWhisper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The log callback is process-wide; the last instance to close restores it, because a Python
    # callback still installed when the interpreter tears down aborts the process.
    def _silence_logs(self) -> None:
        with self._log_lock:
            if InProcessWhisper._log_users == 0:
                self._pw.whisper_log_set(lambda level, text: None)
            InProcessWhisper._log_users += 1

    def _restore_logs(self) -> None:
        with self._log_lock:
            InProcessWhisper._log_users -= 1
            if InProcessWhisper._log_users == 0:
                self._pw.whisper_log_set(None)


_inprocess: dict[tuple[Path, int], InProcessWhisper] = {}


def inprocess_transcribe(model_path: Path, samples: np.ndarray, threads: int) -> float:
    """Seconds for one in-process `whisper_full` of `samples`; the context is loaded once and kept."""
    key = (Path(model_path).resolve(), threads)
    if key not in _inprocess:
        if not _inprocess:
            atexit.register(close_inprocess)
        _inprocess[key] = InProcessWhisper(key[0], threads)
    seconds, _ = _inprocess[key].transcribe(samples)
    return seconds


def close_inprocess() -> None:
    """Free the contexts `inprocess_transcribe` keeps (also done at exit)."""
    while _inprocess:
        _inprocess.popitem()[1].close()


# --- timing and reporting -----------------------------------------------------------------------


def seconds_of(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of `fn`."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of `repeats` calls of `fn`, after `warmup` untimed calls.

    The warm-up absorbs first-call costs (page-faulting the model in, starting thread pools)
    that a long-running server pays once.
    """
    for _ in range(warmup):
        fn()
    return [seconds_of(fn) for _ in range(repeats)]


def ratio(times: Sequence[float], baseline: Sequence[float]) -> float:
    """Median over median: how many times slower than the baseline (below 1: faster)."""
    return statistics.median(times) / statistics.median(baseline)


def report(rows: Mapping[str, Sequence[float]], baseline: str | None = None) -> dict[str, float]:
    """Print a table of medians and ratios against `baseline` (default: the first row).

    Returns each row's ratio, for scripts that check a bound on it.
    """
    names = list(rows)
    baseline = baseline or names[0]
    ratios = {name: ratio(rows[name], rows[baseline]) for name in names}
    width = max(len(name) for name in [*names, "case"])
    # whisper.cpp's OpenMP threads spin at barriers: on an oversubscribed machine one run can take
    # 20x longer than the next. The load shows whether the numbers are worth trusting.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(load average {load:.1f} on {os.cpu_count()} cores)")
    print(f"{'case':<{width}}  {'n':>3}  {'median s':>9}  {'min s':>8}  {'ratio':>6}")
    for name in names:
        times = rows[name]
        mark = "  (baseline)" if name == baseline else ""
        print(
            f"{name:<{width}}  {len(times):>3}  {statistics.median(times):>9.3f}  {min(times):>8.3f}"
            f"  {ratios[name]:>6.2f}{mark}"
        )
    return ratios


def machine_line() -> str:
    """Cores and load averages, for the header of every benchmark's output."""
    loads = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return f"{os.cpu_count()} cores, load averages {loads[0]:.2f} {loads[1]:.2f} {loads[2]:.2f} (1/5/15 min)"


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def foreign_busy_cores(interval: float = 2.0) -> float:
    """Cores kept busy over the next `interval` seconds by processes other than ours."""
    with ForeignLoad() as load:
        time.sleep(interval)
    return load.cores


def _top_processes(count: int = 3) -> str:
    with suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["ps", "-eo", "pid,pcpu,comm", "--sort=-pcpu", "--no-headers"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout  # fmt: skip
        return "; ".join(" ".join(line.split()) for line in out.splitlines()[:count])
    return "?"


def wait_until_quiet(max_busy: float = 0.3, timeout: float = 1200.0, interval: float = 2.0) -> str:
    """Wait until other processes leave the cores alone; returns a line describing the machine.

    whisper.cpp's threads spin, so a concurrent job (a test run, a build) would distort every
    number. Only processes other than this one and its children count: a server under test that
    spins while idle is part of what is measured. Gives up after `timeout` and says so.
    """
    deadline = time.monotonic() + timeout
    while (busy := foreign_busy_cores(interval)) > max_busy and time.monotonic() < deadline:
        print(f"  [waiting: {busy:.1f} cores busy elsewhere; top: {_top_processes()}]", flush=True)
        time.sleep(10)
    note = "" if busy <= max_busy else f"; STILL BUSY after {timeout:.0f} s, numbers suspect"
    return f"{machine_line()}; {busy:.2f} cores busy elsewhere just before{note}"


def _process_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def _our_ticks() -> dict[int, int]:
    """CPU ticks of this process and all its descendants (the servers under test), by pid."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with suppress(OSError, IndexError, ValueError), open(f"/proc/{entry}/stat") as stat:
                parents[int(entry)] = int(stat.read().rpartition(")")[2].split()[1])
    ours, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in ours]
        ours.update(children)
        frontier.extend(children)
    ticks = {}
    for pid in ours:
        with suppress(OSError, IndexError, ValueError):
            ticks[pid] = _process_ticks(pid)
    return ticks


class ForeignLoad:
    """`with ForeignLoad() as load: ...`; then `load.cores`: cores that processes other than this
    one and its children (the servers under test) kept busy while the block ran.

    Machine-wide busy time from /proc/stat minus our processes' own. Start the servers before
    entering: CPU time of one of ours that exits inside the block would be counted as foreign.
    """

    cores = 0.0

    def __enter__(self) -> ForeignLoad:
        self._start = (_cpu_times()[0], _our_ticks(), time.monotonic())
        return self

    def __exit__(self, *exc: object) -> None:
        busy0, ours0, started = self._start
        busy1, ours1, wall = _cpu_times()[0], _our_ticks(), time.monotonic() - started
        ours = sum(ticks - ours0.get(pid, 0) for pid, ticks in ours1.items())
        self.cores = max(0.0, (busy1 - busy0 - ours) / os.sysconf("SC_CLK_TCK") / max(wall, 1e-3))


def run_quietly(fn: Callable[[], _T], max_foreign: float = 0.25, attempts: int = 3) -> tuple[_T, float]:
    """`fn()` once the machine is quiet, again (up to `attempts` in all) while other processes used
    more than `max_foreign` cores during it. Returns the kept result and that foreign load.
    """
    for attempt in range(1, attempts + 1):
        wait_until_quiet(interval=0.5)
        with ForeignLoad() as load:
            result = fn()
        if load.cores <= max_foreign or attempt == attempts:
            return result, load.cores
        print(f"  [re-measuring: other processes used {load.cores:.2f} cores meanwhile]", flush=True)
    raise AssertionError("unreachable")


def foreign_note(loads: Sequence[float]) -> str:
    """One line on how much other processes disturbed the kept measurements."""
    worst = max(loads, default=0.0)
    flag = "" if worst <= 0.25 else "  <- SUSPECT: busy machine"
    return f"(other processes used at most {worst:.2f} cores during the {len(loads)} kept measurements){flag}"


def scrape_metrics(base_url: str) -> dict[str, float]:
    """whisper-api's /metrics: each sample as written (`name{labels}`), and summed over labels (`name`).

    E.g. `whisper_api_processing_seconds_sum`, or with labels
    `whisper_api_http_request_duration_seconds_count{method="POST",route="/v1/audio/transcriptions"}`.
    """
    samples: dict[str, float] = {}
    for line in httpx.get(base_url + "/metrics", timeout=10.0).text.splitlines():
        if line and not line.startswith("#"):
            name_labels, _, value = line.rpartition(" ")
            name = name_labels.partition("{")[0]
            samples[name] = samples.get(name, 0.0) + float(value)
            if name_labels != name:
                samples[name_labels] = float(value)
    return samples


def bench_parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script shares: --quick, --model and --weights."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smoke mode: fewer, shorter runs")
    parser.add_argument("--model", choices=sorted(_MODEL_SPECS), default="tiny.en",
                        help="synthetic model dimensions (default tiny.en)")  # fmt: skip
    parser.add_argument(
        "--weights",
        type=Path,
        help="a ggml model file instead of the synthetic model, e.g. the real base that "
        "bench.real_weights converts (.cache/bench-models/real-base/ggml/f16/ggml-base.bin)",
    )
    return parser


def bench_model(name: str) -> Path:
    """The synthetic model `name`, made if missing."""
    return make_models(names=(name,))[name]


class BenchModel(NamedTuple):
    path: Path
    #: The name the service knows it by.
    name: str
    #: What a report calls it.
    label: str


def chosen_model(args: argparse.Namespace) -> BenchModel:
    """The model `bench_parser`'s options chose: `--weights` if given, else the synthetic `--model`."""
    if args.weights is not None:
        path = args.weights.resolve()
        return BenchModel(path, path.stem.removeprefix("ggml-"), path.name)
    return BenchModel(bench_model(args.model), args.model, f"synthetic {args.model}")


# --- self-check ---------------------------------------------------------------------------------


def selfcheck(threads: int, repeats: int, with_api: bool) -> None:
    """whisper-server (and, if asked, whisper-api) against the in-process baseline on jfk.wav."""
    model = make_models(names=("tiny.en",))["tiny.en"]
    samples = read_wav(JFK_WAV)
    rows: dict[str, list[float]] = {}
    # One contender at a time: they would otherwise compete for the same cores.
    with InProcessWhisper(model, threads) as whisper:
        rows["in-process"] = timed(lambda: whisper.transcribe(samples), repeats)
        print(f"in-process text: {whisper.transcribe(samples)[1][:80]!r}")
    # whisper-server runs with flash attention on (whisper.cpp's default); this row shows what
    # that choice alone is worth, so that it is not mistaken for server overhead.
    with InProcessWhisper(model, threads, flash_attn=False) as whisper:
        rows["in-process, flash_attn off"] = timed(lambda: whisper.transcribe(samples), repeats)
    with WhisperCppServer(model, threads) as transcribe:
        rows["whisper-server"] = timed(lambda: transcribe(JFK_WAV), repeats)
        print(f"whisper-server text: {transcribe(JFK_WAV)[1][:80]!r}")
    if with_api:
        with WhisperApiServer(model.parent, "tiny.en", contexts=1, threads=threads) as transcribe:
            rows["whisper-api"] = timed(lambda: transcribe(JFK_WAV), repeats)
            print(f"whisper-api text: {transcribe(JFK_WAV)[1][:80]!r}")
    print(f"\njfk.wav (11 s), synthetic tiny.en, {threads} threads, median of {repeats}:")
    report(rows, baseline="in-process")


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark harness self-check.")
    parser.add_argument("--selfcheck", action="store_true", help="measure whisper-server vs in-process")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--with-api", action="store_true", help="also measure `whisper-api serve`")
    args = parser.parse_args()
    if not args.selfcheck:
        parser.error("nothing to do; pass --selfcheck")
    selfcheck(args.threads, args.repeats, args.with_api)


if __name__ == "__main__":
    main()

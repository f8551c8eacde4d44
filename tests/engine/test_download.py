"""`models pull` against a real HTTP server on 127.0.0.1: never the internet."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from whisper_api.engine import download
from whisper_api.engine.catalog import ModelCatalog
from whisper_api.engine.download import (
    DEFAULT_BASE_URL,
    KNOWN_MODELS,
    PUBLISHED_MODELS,
    DownloadError,
    model_name,
    model_url,
    pull,
)


class ModelServer(ThreadingHTTPServer):
    """Serves `files` under several routes, each misbehaving in one way, and logs request paths.

    /files/NAME     the file, or 404
    /redirect/NAME  302 to /files/NAME
    /cut/NAME       announces the whole file, sends half, then closes the connection
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        route, _, name = self.path.lstrip("/").partition("/")
        data = self.server.files.get(name)
        if route == "redirect":
            self.send_response(302)
            self.send_header("Location", f"/files/{name}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif data is None:
            self.send_error(404)
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            # The client may hang up mid-body on purpose (the Ctrl-C test).
            with contextlib.suppress(ConnectionError):
                self.wfile.write(data[: len(data) // 2] if route == "cut" else data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest's output clean


@pytest.fixture(scope="module")
def model_bytes(models_dir: Path) -> bytes:
    return (models_dir / "ggml-mini.bin").read_bytes()


@pytest.fixture(scope="module")
def running_server(model_bytes: bytes) -> Iterator[ModelServer]:
    server = ModelServer()
    server.files["ggml-mini.bin"] = model_bytes
    # A known name with bytes that are not the official file.
    server.files["ggml-tiny.en.bin"] = model_bytes
    server.files["ggml-page.bin"] = b"<html><body>Sign in to continue</body></html>"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(running_server: ModelServer) -> ModelServer:
    running_server.requests.clear()
    return running_server


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "models"


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- successful pulls -----------------------------------------------------------------------------


def test_pull_writes_the_served_bytes(server: ModelServer, target: Path, model_bytes: bytes) -> None:
    path = pull("mini", target, base_url=f"{server.url}/files", progress=False)
    assert path == target / "ggml-mini.bin"
    assert path.read_bytes() == model_bytes
    assert files_in(target) == ["ggml-mini.bin"]


def test_pulled_model_is_in_the_catalog(server: ModelServer, target: Path) -> None:
    pull("mini", target, base_url=f"{server.url}/files", progress=False)
    assert ModelCatalog(target, "mini").resolve("whisper-1").multilingual


def test_pull_follows_redirects(server: ModelServer, target: Path, model_bytes: bytes) -> None:
    path = pull("mini", target, base_url=f"{server.url}/redirect", progress=False)
    assert path.read_bytes() == model_bytes
    assert server.requests == ["/redirect/ggml-mini.bin", "/files/ggml-mini.bin"]


def test_matching_checksum_is_accepted(
    server: ModelServer, target: Path, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download, "KNOWN_MODELS", {"mini": hashlib.sha1(model_bytes).hexdigest()})
    assert pull("mini", target, base_url=f"{server.url}/files", progress=False).is_file()


@pytest.mark.parametrize("name", ["mini", "ggml-mini", "ggml-mini.bin", "  mini\n"])
def test_every_spelling_of_a_name_fetches_the_same_file(server: ModelServer, target: Path, name: str) -> None:
    path = pull(name, target, base_url=f"{server.url}/files", progress=False)
    assert path == target / "ggml-mini.bin"
    assert server.requests == ["/files/ggml-mini.bin"]


def test_progress_bar_goes_to_stderr(
    server: ModelServer, target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pull("mini", target, base_url=f"{server.url}/files", progress=True)
    captured = capsys.readouterr()
    assert "ggml-mini.bin" in captured.err
    assert captured.out == ""


def test_unknown_name_is_tried_and_said_to_have_no_checksum(
    server: ModelServer, target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pull("mini", target, base_url=f"{server.url}/files", progress=True)
    assert "not one of whisper.cpp's published models" in capsys.readouterr().err


def test_present_model_is_not_downloaded_again(server: ModelServer, target: Path) -> None:
    target.mkdir()
    (target / "ggml-mini.bin").write_bytes(b"already here")
    path = pull("ggml-mini.bin", target, base_url=f"{server.url}/files", progress=False)
    assert path.read_bytes() == b"already here"
    assert server.requests == []


def test_force_downloads_over_a_present_model(server: ModelServer, target: Path, model_bytes: bytes) -> None:
    target.mkdir()
    (target / "ggml-mini.bin").write_bytes(b"stale")
    path = pull("mini", target, base_url=f"{server.url}/files", progress=False, force=True)
    assert path.read_bytes() == model_bytes


# --- failures leave nothing behind ----------------------------------------------------------------


def test_404_names_the_model_and_url(server: ModelServer, target: Path) -> None:
    with pytest.raises(DownloadError) as caught:
        pull("nope", target, base_url=f"{server.url}/files", progress=False)
    assert str(caught.value) == f"no model named nope at {server.url}/files/ggml-nope.bin (HTTP 404)."
    assert files_in(target) == []


def test_truncated_body_is_an_error_and_leaves_no_file(server: ModelServer, target: Path) -> None:
    with pytest.raises(DownloadError, match="broke off"):
        pull("mini", target, base_url=f"{server.url}/cut", progress=False)
    assert files_in(target) == []


def test_checksum_mismatch_is_an_error_and_leaves_no_file(server: ModelServer, target: Path) -> None:
    with pytest.raises(DownloadError) as caught:
        pull("tiny.en", target, base_url=f"{server.url}/files", progress=False)
    message = str(caught.value)
    assert f"expected SHA-1 {KNOWN_MODELS['tiny.en']}" in message
    assert "discarded" in message
    assert files_in(target) == []


def test_a_file_that_is_not_a_model_is_discarded(server: ModelServer, target: Path) -> None:
    with pytest.raises(DownloadError, match="not a whisper ggml model"):
        pull("page", target, base_url=f"{server.url}/files", progress=False)
    assert files_in(target) == []


def test_unreachable_server_gives_the_offline_advice(target: Path) -> None:
    with pytest.raises(DownloadError) as caught:
        pull("tiny.en", target, base_url=f"http://127.0.0.1:{closed_port()}", progress=False, timeout=5)
    message = str(caught.value)
    assert message.startswith("could not reach 127.0.0.1 (")
    assert f"copy ggml-tiny.en.bin into {target} yourself" in message
    assert "WHISPER_API_MODEL_BASE_URL" in message
    assert files_in(target) == []


def test_ctrl_c_mid_download_leaves_no_file(
    server: ModelServer, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class InterruptedBar(download.tqdm):
        def update(self, n: float | None = 1) -> bool | None:
            raise KeyboardInterrupt

    monkeypatch.setattr(download, "tqdm", InterruptedBar)
    with pytest.raises(KeyboardInterrupt):
        pull("mini", target, base_url=f"{server.url}/files", progress=False)
    assert files_in(target) == []


# --- names and URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny.en", "ggml-tiny.en", "ggml-tiny.en.bin", " tiny.en "])
def test_model_name_accepts_file_forms(name: str) -> None:
    assert model_name(name) == "tiny.en"


@pytest.mark.parametrize("name", ["", "../tiny", "a/b", "a\\b", "tiny..en", ".hidden", "tiny en"])
def test_model_name_rejects_anything_but_a_plain_name(name: str) -> None:
    with pytest.raises(DownloadError, match="not a model name"):
        model_name(name)


def test_default_url_is_whisper_cpp_on_hugging_face() -> None:
    assert model_url("tiny.en") == f"{DEFAULT_BASE_URL}/ggml-tiny.en.bin"
    assert DEFAULT_BASE_URL == "https://huggingface.co/ggerganov/whisper.cpp/resolve/main"


def test_mirror_url_ignores_a_trailing_slash() -> None:
    assert model_url("base", "http://mirror.local/models/") == "http://mirror.local/models/ggml-base.bin"


def test_checksums_are_sha1_digests_of_published_models() -> None:
    assert set(KNOWN_MODELS) <= set(PUBLISHED_MODELS)
    assert all(
        len(digest) == 40 and set(digest) <= set("0123456789abcdef") for digest in KNOWN_MODELS.values()
    )


def test_tinydiarize_model_comes_from_its_authors_repository() -> None:
    assert model_url("small.en-tdrz").startswith("https://huggingface.co/akashmjn/tinydiarize-whisper.cpp/")
    assert model_url("small.en-tdrz", "http://mirror.local") == "http://mirror.local/ggml-small.en-tdrz.bin"

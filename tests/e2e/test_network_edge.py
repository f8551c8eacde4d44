"""The network edge: each route's body limit held while the body streams in, clients that hang up
mid-request or never finish one, and job URLs into the server's own network refused at submission."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_bad_input import assert_openai_error
from tests.support.waiting import wait_until

SECRET = "whsec_" + base64.b64encode(b"a shared secret of 32 bytes.....").decode()
HEADER_TIMEOUT_SECONDS = 1
BODY_TIMEOUT_SECONDS = 2
MiB = 2**20
#: The start of a multipart upload whose file part goes on for as long as the test sends zeros.
FORM_HEAD = (
    b'--edge\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
    b"Content-Type: audio/wav\r\n\r\n"
)


@pytest.fixture(scope="module")
def edge_server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Default body limits (25 MiB uploads), callbacks on, a one-second deadline for request heads and
    two seconds for a stalled body."""
    log_path = tmp_path_factory.mktemp("edge") / "server.log"
    running = start_server(
        models_dir,
        log_path,
        f"--default-model mini.en --contexts 1 --threads 1 --callback-secret {SECRET}"
        f" --header-timeout-seconds {HEADER_TIMEOUT_SECONDS} --body-timeout-seconds {BODY_TIMEOUT_SECONDS}",
    )
    yield running
    stop_server(running)


def requests_counted(server: Server, route: str, status: int) -> float:
    return server.metric("whisper_api_http_requests_total", route=route, status=str(status))


# -- body limits ---------------------------------------------------------------------------------


def test_a_chunked_upload_past_the_limit_is_refused_while_it_streams(edge_server: Server) -> None:
    sent = 0

    def upload() -> Iterator[bytes]:
        nonlocal sent
        yield FORM_HEAD
        for _ in range(200):
            sent += MiB
            yield bytes(MiB)

    response = httpx.post(
        f"{edge_server.base_url}/v1/audio/transcriptions",
        content=upload(),
        headers={"Content-Type": "multipart/form-data; boundary=edge"},
        timeout=60,
    )
    error = assert_openai_error(response, 413, "file")
    assert "25 MiB" in error["message"]
    # The server stopped reading just past its 26 MiB (upload and form) and closed the connection:
    # the client got its answer with most of the 200 MiB never sent (socket buffers hold a few MiB).
    assert sent < 50 * MiB


def test_a_chunked_raw_body_past_the_limit_is_refused_in_deepgrams_shape(edge_server: Server) -> None:
    response = httpx.post(
        f"{edge_server.base_url}/v1/listen",
        content=(bytes(MiB) for _ in range(200)),
        headers={"Content-Type": "audio/wav"},
        timeout=60,
    )
    assert response.status_code == 413
    assert response.json()["err_code"] == "FILE_TOO_LARGE" and "25 MiB" in response.json()["err_msg"]


def test_a_json_body_past_its_limit_is_refused_while_it_streams(edge_server: Server) -> None:
    def document() -> Iterator[bytes]:
        yield b'{"url": "https://example.com/a.wav", "prompt": "'
        for _ in range(200):
            yield b"a" * MiB
        yield b'"}'

    response = httpx.post(
        f"{edge_server.base_url}/v1/transcription-jobs",
        content=document(),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert "1 MiB" in assert_openai_error(response, 413)["message"]


# -- clients that hang up ------------------------------------------------------------------------


def test_a_client_that_hangs_up_mid_upload_is_counted_as_499_not_500(edge_server: Server) -> None:
    route = "/v1/audio/transcriptions"
    closed_before = requests_counted(edge_server, route, 499)
    failed_before = requests_counted(edge_server, route, 500)
    with socket.create_connection((edge_server.host, edge_server.port)) as connection:
        connection.sendall(
            b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: edge\r\n"
            b"Content-Type: multipart/form-data; boundary=edge\r\nContent-Length: 1048576\r\n\r\n"
            + FORM_HEAD
            + bytes(100_000)
        )
    wait_until(lambda: requests_counted(edge_server, route, 499) == closed_before + 1, what="a 499 counted")
    assert requests_counted(edge_server, route, 500) == failed_before
    log = edge_server.log()
    assert '"event": "client_closed"' in log and "Traceback" not in log


# -- request heads that never end ----------------------------------------------------------------


def closed_by_server(connection: socket.socket) -> bool:
    """True once the server closes; a socket timeout (far past the deadline) fails the test."""
    connection.settimeout(10 * HEADER_TIMEOUT_SECONDS)
    return connection.recv(1024) == b""


def test_a_connection_that_sends_nothing_is_closed(edge_server: Server) -> None:
    with socket.create_connection((edge_server.host, edge_server.port)) as connection:
        assert closed_by_server(connection)


def test_a_request_line_left_half_sent_is_closed(edge_server: Server) -> None:
    with socket.create_connection((edge_server.host, edge_server.port)) as connection:
        connection.sendall(b"GET /health HT")
        assert closed_by_server(connection)


def test_a_request_head_trickled_in_is_closed_when_its_time_is_up(edge_server: Server) -> None:
    # At a byte per tenth of a second this head would take 20 s: the deadline is for all of it.
    head = b"GET /health HTTP/1.1\r\nHost: edge\r\nX-Slow: " + b"x" * 200
    with socket.create_connection((edge_server.host, edge_server.port)) as connection:
        connection.settimeout(0.1)
        for byte in head:
            try:
                connection.sendall(bytes([byte]))
                if connection.recv(1024) == b"":
                    return
            except TimeoutError:
                continue  # still open: the next byte
            except ConnectionError:
                return
    pytest.fail("the server waited for the whole head, however slowly it came")


def test_a_request_head_sent_in_pieces_in_time_is_answered(edge_server: Server) -> None:
    with socket.create_connection((edge_server.host, edge_server.port)) as connection:
        connection.sendall(b"GET /health HT")
        connection.sendall(b"TP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n")
        assert connection.makefile("rb").readline().startswith(b"HTTP/1.1 200")


def test_a_request_body_that_stops_arriving_is_closed(edge_server: Server) -> None:
    # Uploads stalled part-way held what had come for as long as their clients liked: 40 stalled at
    # 20 MiB each kept 700 MiB of the server's memory.
    with socket.create_connection((edge_server.host, edge_server.port)) as connection:
        connection.sendall(
            b"POST /v1/listen HTTP/1.1\r\nHost: edge\r\nContent-Type: audio/wav\r\n"
            b"Content-Length: 1048576\r\n\r\n" + bytes(100_000)
        )
        assert closed_by_server(connection)


def test_a_body_length_stated_two_ways_is_refused_and_nothing_after_it_is_read(edge_server: Server) -> None:
    # h11 went by Transfer-Encoding and kept the connection: behind a proxy going by Content-Length, the
    # GET below was a second request smuggled in the first one's body.
    with socket.create_connection((edge_server.host, edge_server.port)) as connection:
        connection.sendall(
            b"POST /v1/listen HTTP/1.1\r\nHost: edge\r\nContent-Length: 44\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: edge\r\n\r\n"
        )
        connection.settimeout(30)
        answer = connection.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 400") and answer.count(b"HTTP/1.1") == 1


WEBSOCKET_HANDSHAKE = (
    b"Host: edge\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v1/listen?tag=" + b"a" * 9000 + b" HTTP/1.1\r\n" + WEBSOCKET_HANDSHAKE + b"\r\n",
        b"GET /v1/listen HTTP/1.1\r\n" + WEBSOCKET_HANDSHAKE + b"X-Long: " + b"a" * 9000 + b"\r\n\r\n",
    ],
    ids=["long request line", "long header"],
)
def test_a_websocket_handshake_too_long_for_the_websocket_parser_is_answered_400(
    edge_server: Server, head: bytes
) -> None:
    # The websockets library neither answered nor closed such a head; the connection hung open.
    with socket.create_connection((edge_server.host, edge_server.port)) as connection:
        connection.settimeout(30)
        connection.sendall(head)
        assert connection.makefile("rb").readline().startswith(b"HTTP/1.1 400")


# -- job URLs ------------------------------------------------------------------------------------

INTERNAL_URLS = [
    "http://127.0.0.1/a.wav",
    "http://10.0.0.1/a.wav",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost/a.wav",
    "http://[::1]/a.wav",
    "http://[::ffff:127.0.0.1]/a.wav",
    "http://0x7f000001/a.wav",
    "http://2130706433/a.wav",
    "http://127.1/a.wav",
    "http://0177.0.0.1/a.wav",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
@pytest.mark.parametrize("field", ["url", "callback_url"])
def test_a_job_url_into_the_servers_network_is_refused_at_submission(
    edge_server: Server, field: str, url: str
) -> None:
    body = {"url": "https://example.com/a.wav", field: url}
    response = httpx.post(f"{edge_server.base_url}/v1/transcription-jobs", json=body)
    assert assert_openai_error(response, 400, field)["code"] in ("url_not_allowed", "invalid_url")

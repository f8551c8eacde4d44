"""A small HTTP server on 127.0.0.1 for URL-fetching tests: files, redirects, and lies about size."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FileServer:
    base_url: str
    files: dict[str, bytes] = field(default_factory=dict)
    #: POSTs received (callbacks), in order; `refuse[path]` answers that many of them with HTTP 500 first.
    received: list[Delivery] = field(default_factory=list)
    #: GETs received, in order.
    fetched: list[Delivery] = field(default_factory=list)
    refuse: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


@contextmanager
def file_server(
    host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> Iterator[FileServer]:
    """Serves `files[name]` at /files/<name>, 302 to `to` at /redirect?to=..., a redirect to itself at
    /loop, and at /huge a Content-Length far over any upload limit; records every request. HTTPS with
    `tls`, a server context holding its certificate."""
    served = FileServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.fetched.append(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, b""))
            parts = urlsplit(self.path)
            if parts.path.startswith("/files/") and parts.path[7:] in served.files:
                self._reply(200, served.files[parts.path[7:]])
            elif parts.path in ("/redirect", "/loop"):
                self.send_response(302)
                target = "/loop" if parts.path == "/loop" else parse_qs(parts.query)["to"][0]
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif parts.path == "/huge":
                self.send_response(200)
                self.send_header("Content-Length", str(10 * 2**30))
                self.end_headers()
            else:
                self._reply(404, b"not found")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            served.received.append(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if served.refuse.get(self.path, 0) > 0:
                served.refuse[self.path] -= 1
                self._reply(500, b"try again")
            else:
                self._reply(204, b"")

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    served.base_url = f"{'https' if tls else 'http'}://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()

"""uvicorn's HTTP/1.1 protocol (h11) with a deadline for each request's head and a limit on how long
its body may stall.

uvicorn closes a keep-alive connection that stays idle after a response, but not one that is in
the middle of a request's head: a client that connects and sends nothing, or half a request line
and then a byte now and then (slowloris), holds its connection and a file descriptor for as long as
it likes, and enough such clients leave no room for anyone else. Here a connection must complete
each request line and headers within `header_timeout` seconds of starting them (connecting, or the
first byte after the previous response), or it is closed. The body comes at the upload's pace, and
each route bounds its size, but a body that stops arriving held all that had come in memory for as long
as its client liked (40 uploads stalled at 20 MiB: 700 MiB, for good): a body that makes no progress for
`body_timeout` seconds while the server is ready for more (nginx's client_body_timeout) is closed too.

A request with both Content-Length and Transfer-Encoding is refused with a 400 and its connection
closed (RFC 9112, 6.1): h11 went by Transfer-Encoding and kept the connection open, so behind a proxy
that goes by Content-Length the rest of such a body was read here as a second request (smuggling).

A WebSocket handshake is handed on to the `websockets` library, which parses the head again with
limits of its own (lines of 8 KiB, 128 headers) and, past them, neither answers nor closes: such a
head is refused here with a 400 instead.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE, H11Protocol

#: The `websockets` library's limits on a handshake's head (websockets.legacy.http, which uvicorn uses).
MAX_LINE_LENGTH = 8192
MAX_NUM_HEADERS = 128


class _UnambiguousConnection(h11.Connection):
    """h11's server side, refusing a request whose body length is stated two ways."""

    def next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        event = super().next_event()
        if isinstance(event, h11.Request):
            names = {name for name, _ in event.headers}
            if b"content-length" in names and b"transfer-encoding" in names:
                # uvicorn answers a protocol error with a 400 and closes the connection.
                raise h11.RemoteProtocolError("both Content-Length and Transfer-Encoding")
        return event


class HeaderTimeoutProtocol(H11Protocol):
    header_timeout: float = 10.0
    body_timeout: float = 60.0

    _head_deadline: asyncio.TimerHandle | None = None
    _body_check: asyncio.TimerHandle | None = None
    _body_progress = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.conn = _UnambiguousConnection(
            h11.SERVER, self.config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        )
        super().connection_made(transport)
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is complete: the deadline is met
            self._cancel_deadline()
        elif self._head_deadline is None:  # the first bytes of the next request: the clock starts
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)
        if self.conn.their_state is h11.SEND_BODY:
            self._body_progress = self.loop.time()
            if self._body_check is None:
                self._body_check = self.loop.call_later(self.body_timeout, self._check_body)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        request_line = len(event.method) + len(event.target) + len(b"  HTTP/1.1\r\n")
        longest_header = max((len(name) + len(value) + 4 for name, value in self.headers), default=0)
        if max(request_line, longest_header) > MAX_LINE_LENGTH or len(self.headers) > MAX_NUM_HEADERS:
            self.send_400_response(
                f"A WebSocket handshake's request line and each header must fit in {MAX_LINE_LENGTH} "
                f"bytes, with at most {MAX_NUM_HEADERS} headers."
            )
            return
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        if self._body_check is not None:
            self._body_check.cancel()
        super().connection_lost(exc)

    def _check_body(self) -> None:
        self._body_check = None
        if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
            return
        # While the application is not reading (it pauses the socket), or the client waits for the 100
        # Continue the application has yet to ask for, the server is the one keeping the body waiting.
        owes_continue = self.cycle.waiting_for_100_continue and not self.cycle.response_started
        if self.flow.read_paused or owes_continue:
            self._body_progress = self.loop.time()
        stalled = self.loop.time() - self._body_progress
        if stalled >= self.body_timeout:
            self.transport.close()
        else:
            self._body_check = self.loop.call_later(self.body_timeout - stalled, self._check_body)

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def _cancel_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None


def with_header_timeout(seconds: float, body_seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class to give uvicorn (`http=`), closing connections whose head takes longer than
    `seconds` or whose body stalls for `body_seconds`."""
    return type(
        "HeaderTimeoutProtocol",
        (HeaderTimeoutProtocol,),
        {"header_timeout": seconds, "body_timeout": body_seconds},
    )

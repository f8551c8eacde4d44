"""Fetching audio from a URL on a user's behalf, without becoming a way into the operator's network.

A URL given to the API is a request this server makes, from inside whatever network it runs in. So:
only http and https; the host is resolved once per request and every address it resolves to must be
public (loopback, private, link-local, multicast and reserved ranges are refused) unless the operator
allows it by address or network; the connection goes to an address that was checked, not to whatever
a second lookup answers (DNS rebinding), with the Host header and TLS (SNI, certificate) still for the
name; redirects are followed, each hop resolved and checked the same way, at most `max_redirects`;
proxy and TLS settings from the environment are ignored; the body is capped in size and the whole
fetch in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpx

from whisper_api.errors import InvalidInput, TooLargeError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchError(InvalidInput):
    """The URL could not be fetched; `message` is for the API user, `code` says why in a word."""

    param = "url"
    code: str

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, code=code)


class FetchTooLarge(TooLargeError, FetchError):
    """Answered as too large rather than invalid; still a FetchError to whoever catches those."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"The file at the URL is larger than the {max_bytes / 2**20:g} MiB limit.", "file_too_large"
        )


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int
    timeout: float = 60.0
    max_redirects: int = 5
    #: Networks that may be reached although they are not public (an operator's own storage).
    allowed: tuple[Network, ...] = ()

    @classmethod
    def with_allowed(cls, entries: Iterable[str], *, max_bytes: int, timeout: float = 60.0) -> FetchPolicy:
        """`entries` are addresses or networks ("127.0.0.1", "10.0.0.0/8")."""
        allowed = tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)
        return cls(max_bytes=max_bytes, timeout=timeout, allowed=allowed)

    def permits(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed):
            return True
        # is_global leaves some reserved IPv6 in (::7f00:1, IPv4-compatible 127.0.0.1): refused too.
        return address.is_global and not (address.is_multicast or address.is_reserved)


async def fetch(url: str, policy: FetchPolicy) -> bytes:
    """The body at `url`; FetchError says why not."""
    check_http_url(url)
    try:
        async with (
            asyncio.timeout(policy.timeout),
            _client(policy, follow_redirects=True) as client,
            client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
        ):
            if not response.is_success:
                raise FetchError(
                    f"Fetching the URL failed: the server answered HTTP {response.status_code}.",
                    "url_fetch_failed",
                )
            return await _body(response, policy.max_bytes)
    except TimeoutError:
        raise FetchError(
            f"Fetching the URL took longer than {policy.timeout:g} s.", "url_fetch_timeout"
        ) from None
    except httpx.TooManyRedirects:
        raise FetchError(
            f"The URL redirected more than {policy.max_redirects} times.", "url_fetch_failed"
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:  # InvalidURL is not an HTTPError
        raise FetchError(
            f"Fetching the URL failed: {error.__class__.__name__}.", "url_fetch_failed"
        ) from None


async def post(url: str, body: bytes, headers: dict[str, str], policy: FetchPolicy) -> int:
    """POST `body` to `url` under the same rules (redirects are not followed); the status code.
    FetchError when the address is refused, the request fails or time runs out."""
    check_http_url(url)
    try:
        async with (
            asyncio.timeout(policy.timeout),
            _client(policy, follow_redirects=False) as client,
            client.stream("POST", url, content=body, headers=headers) as response,
        ):
            return response.status_code
    except TimeoutError:
        raise FetchError(f"The request took longer than {policy.timeout:g} s.", "url_fetch_timeout") from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:  # InvalidURL is not an HTTPError
        raise FetchError(f"The request failed: {error.__class__.__name__}.", "url_fetch_failed") from None


async def check_destination(url: str, policy: FetchPolicy) -> None:
    """FetchError now if `url` is not an http(s) URL, or if its host is, or resolves to, an address the
    policy refuses: for a request accepted now and fetched later. A host that does not resolve at all
    is let through; it may by then, and every fetch resolves and checks again."""
    check_http_url(url)
    target = httpx.URL(url)
    try:
        await _checked_addresses(target.raw_host.decode("ascii"), _port(target), policy)
    except FetchError as error:
        if error.code == "url_not_allowed":
            raise


def check_http_url(url: str) -> SplitResult:
    """`url`'s parts, if it is an http(s) URL with a host that httpx can send; FetchError if not."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it is the check: a port outside 0-65535 raises ValueError
        httpx.URL(url)  # control characters, overlong parts
    except (ValueError, httpx.InvalidURL):
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("The URL must be an http:// or https:// address with a host name.", "invalid_url")
    return parts


def _client(policy: FetchPolicy, *, follow_redirects: bool) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=_CheckedTransport(policy),
        follow_redirects=follow_redirects,
        max_redirects=policy.max_redirects,
        trust_env=False,
    )


class _CheckedTransport(httpx.AsyncBaseTransport):
    """Sends each request (each redirect hop is one) to an address its host was resolved to just now
    and checked against the policy, trying them in the resolver's order until one connects.

    The URL is rewritten to the address and the name kept where it is needed: in the Host header,
    which the request already carries, and for TLS in httpx's `sni_hostname` extension, which is
    both the SNI and the name the certificate must be valid for. Rewriting at this level, rather than
    in the client, keeps the name in `response.url`, so relative redirects resolve against it.
    """

    def __init__(self, policy: FetchPolicy) -> None:
        self._policy = policy
        # No kept-alive connections: one made (and TLS-verified) for a name is never reused for
        # another name that resolves to the same address.
        self._transport = httpx.AsyncHTTPTransport(
            trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        check_http_url(str(request.url))  # a redirect may point anywhere: ftp://, file://
        host = request.url.raw_host.decode("ascii")
        *others, last = await _checked_addresses(host, _port(request.url), self._policy)
        for address in others:
            with contextlib.suppress(httpx.ConnectError):
                return await self._transport.handle_async_request(_to_address(request, address, host))
        return await self._transport.handle_async_request(_to_address(request, last, host))

    async def aclose(self) -> None:
        await self._transport.aclose()


def _to_address(request: httpx.Request, address: Address, host: str) -> httpx.Request:
    return httpx.Request(
        request.method,
        request.url.copy_with(host=str(address)),
        headers=request.headers,
        stream=request.stream,
        extensions={**request.extensions, "sni_hostname": host},
    )


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


async def _checked_addresses(host: str, port: int, policy: FetchPolicy) -> list[Address]:
    """Every address `host` resolves to, if the policy permits them all; FetchError if not. The system
    resolver also reads the odd spellings of an address (0x7f000001, 2130706433, 127.1) as the address
    they stand for, so they are checked as that address."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise FetchError(f"The URL's host {host!r} could not be resolved.", "url_fetch_failed") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not all(policy.permits(address) for address in addresses):
        raise _refused(host)
    return addresses


def _refused(host: str) -> FetchError:
    return FetchError(
        f"The URL's host {host!r} is a private, loopback or otherwise non-public address, which this server "
        "does not fetch from.",
        "url_not_allowed",
    )


async def _body(response: httpx.Response, max_bytes: int) -> bytes:
    too_large = FetchTooLarge(max_bytes)
    length = response.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)

"""Fetching audio from a URL on a user's behalf, without becoming a way into the operator's network.

A URL given to the API is a request this server makes, from inside whatever network it runs in. So:
only http and https; every address the host resolves to must be public (loopback, private,
link-local, multicast and reserved ranges are refused) unless the operator allows it by address or
network; the address actually connected to is checked again, so a name that resolves differently a
moment later (DNS rebinding) gains nothing; redirects are followed by hand, each hop checked the same
way, at most `max_redirects`; the body is capped in size and the whole fetch in time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin, urlsplit

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchError(Exception):
    """The URL could not be fetched; `message` is for the API user, `code` says why in a word."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int
    timeout: float = 60.0
    max_redirects: int = 5
    #: Networks that may be reached although they are not public (an operator's own storage).
    allowed: tuple[Network, ...] = ()

    @classmethod
    def with_allowed(cls, entries: Iterable[str], **settings: object) -> FetchPolicy:
        """`entries` are addresses or networks ("127.0.0.1", "10.0.0.0/8")."""
        return cls(
            allowed=tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries), **settings
        )  # type: ignore[arg-type]

    def permits(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed):
            return True
        return address.is_global and not address.is_multicast


async def fetch(url: str, policy: FetchPolicy) -> bytes:
    """The body at `url`; FetchError says why not."""
    try:
        async with asyncio.timeout(policy.timeout), httpx.AsyncClient(follow_redirects=False) as client:
            for _ in range(policy.max_redirects + 1):
                await _check_host(url, policy)
                async with client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
                    _check_peer(response, url, policy)
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
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
    except (httpx.HTTPError, httpx.InvalidURL) as error:  # InvalidURL is not an HTTPError
        raise FetchError(
            f"Fetching the URL failed: {error.__class__.__name__}.", "url_fetch_failed"
        ) from None
    raise FetchError(f"The URL redirected more than {policy.max_redirects} times.", "url_fetch_failed")


async def post(url: str, body: bytes, headers: dict[str, str], policy: FetchPolicy) -> int:
    """POST `body` to `url` under the same rules (redirects are not followed); the status code.
    FetchError when the address is refused, the request fails or time runs out."""
    try:
        async with asyncio.timeout(policy.timeout), httpx.AsyncClient(follow_redirects=False) as client:
            await _check_host(url, policy)
            async with client.stream("POST", url, content=body, headers=headers) as response:
                _check_peer(response, url, policy)
                return response.status_code
    except TimeoutError:
        raise FetchError(f"The request took longer than {policy.timeout:g} s.", "url_fetch_timeout") from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:  # InvalidURL is not an HTTPError
        raise FetchError(f"The request failed: {error.__class__.__name__}.", "url_fetch_failed") from None


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


async def _check_host(url: str, policy: FetchPolicy) -> None:
    parts = check_http_url(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, ValueError):
        raise FetchError(
            f"The URL's host {parts.hostname!r} could not be resolved.", "url_fetch_failed"
        ) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not policy.permits(address):
            raise _refused(parts.hostname)


def _check_peer(response: httpx.Response, url: str, policy: FetchPolicy) -> None:
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if peer and not policy.permits(ipaddress.ip_address(peer[0].split("%")[0])):
        raise _refused(urlsplit(url).hostname or url)


def _refused(host: str) -> FetchError:
    return FetchError(
        f"The URL's host {host!r} is a private, loopback or otherwise non-public address, which this server "
        "does not fetch from.",
        "url_not_allowed",
    )


async def _body(response: httpx.Response, max_bytes: int) -> bytes:
    too_large = FetchError(
        f"The file at the URL is larger than the {max_bytes / 2**20:g} MiB limit.", "file_too_large"
    )
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

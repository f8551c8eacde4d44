"""Which addresses a URL fetch may reach: public ones, and only the private ones an operator allows;
and that the fetch connects to the address it checked, however the name answers later."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import certifi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.http_files import file_server
from tests.support.net import rebinding
from whisper_api.service.fetch import FetchError, FetchPolicy, check_destination, check_http_url, fetch

DEFAULT = FetchPolicy(max_bytes=1)
#: 127.0.0.2 stands in for a public address: allowed, and still a server the test can run.
CHECKED = FetchPolicy.with_allowed(["127.0.0.2"], max_bytes=1000, timeout=10)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not DEFAULT.permits(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert DEFAULT.permits(ipaddress.ip_address(address))


def test_an_allowed_network_opens_exactly_that_network() -> None:
    policy = FetchPolicy.with_allowed(["10.0.0.0/8", "127.0.0.1"], max_bytes=1)
    assert policy.permits(ipaddress.ip_address("10.9.9.9"))
    assert policy.permits(ipaddress.ip_address("127.0.0.1"))
    assert not policy.permits(ipaddress.ip_address("127.0.0.2"))
    assert not policy.permits(ipaddress.ip_address("192.168.0.1"))


@given(st.ip_addresses(network="10.0.0.0/8") | st.ip_addresses(network="192.168.0.0/16"))
def test_private_ranges_are_refused_by_default(address: ipaddress.IPv4Address) -> None:
    assert not DEFAULT.permits(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[abc]/",
        "https://example.com/a\x01",
        "http://example.com:99999/",
        "ftp://example.com/a",
    ],
)
def test_a_malformed_or_non_http_url_is_refused_as_invalid(url: str) -> None:
    with pytest.raises(FetchError) as refused:
        check_http_url(url)
    assert refused.value.code == "invalid_url"


def assert_http_url_or_invalid(url: str) -> None:
    try:
        parts = check_http_url(url)
    except FetchError as refused:
        assert refused.code == "invalid_url"
    else:
        assert parts.scheme in ("http", "https") and parts.hostname


@given(st.text())
def test_any_text_is_either_an_http_url_or_refused_as_invalid(url: str) -> None:
    assert_http_url_or_invalid(url)


@given(st.from_regex(r"https?://[a-z0-9.\[\]:%@/?#-]{0,40}", fullmatch=True))
def test_url_shaped_text_is_either_an_http_url_or_refused_as_invalid(url: str) -> None:
    assert_http_url_or_invalid(url)


def test_a_name_that_rebinds_to_loopback_is_fetched_from_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with file_server() as loopback:
        port = loopback.port
        with file_server("127.0.0.2", port) as checked:
            loopback.files["a.wav"], checked.files["a.wav"] = b"internal", b"audio"
            rebinding(monkeypatch, "audio.rebind.test", first="127.0.0.2", then="127.0.0.1")
            body = asyncio.run(fetch(f"http://audio.rebind.test:{port}/files/a.wav", CHECKED))
    assert body == b"audio"
    assert loopback.fetched == []
    assert checked.fetched[0].headers["host"] == f"audio.rebind.test:{port}"


def test_a_redirect_to_a_name_that_rebinds_is_checked_and_pinned_too(monkeypatch: pytest.MonkeyPatch) -> None:
    with file_server() as loopback:
        port = loopback.port
        with file_server("127.0.0.2", port) as checked:
            loopback.files["a.wav"], checked.files["a.wav"] = b"internal", b"audio"
            rebinding(monkeypatch, "hop.rebind.test", first="127.0.0.2", then="127.0.0.1")
            target = f"http://hop.rebind.test:{port}/files/a.wav"
            body = asyncio.run(fetch(f"{checked.base_url}/redirect?to={target}", CHECKED))
    assert body == b"audio"
    assert loopback.fetched == []


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "0x7f000001", "2130706433", "127.1", "0177.0.0.1"])
def test_loopback_spelled_oddly_is_refused_and_never_reached(host: str) -> None:
    with file_server() as loopback:
        loopback.files["a.wav"] = b"internal"
        port = loopback.port
        with pytest.raises(FetchError) as refused:
            asyncio.run(fetch(f"http://{host}:{port}/files/a.wav", FetchPolicy(max_bytes=1000, timeout=10)))
    assert refused.value.code in ("url_not_allowed", "invalid_url")
    assert loopback.fetched == []


#: The ways a resolver (inet_aton) or a URL parser reads an IPv4 address.
SPELLINGS: list[Callable[[ipaddress.IPv4Address], str]] = [
    str,
    lambda address: str(int(address)),
    lambda address: hex(int(address)),
    lambda address: ".".join(hex(part) for part in address.packed),
    lambda address: f"{address.packed[0]}.{int(address) & 0xFFFFFF}",
    lambda address: f"[::ffff:{address}]",
    lambda address: f"[::ffff:{int(address) >> 16:x}:{int(address) & 0xFFFF:x}]",
]


@given(
    st.ip_addresses(network="127.0.0.0/8")
    | st.ip_addresses(network="10.0.0.0/8")
    | st.ip_addresses(network="169.254.0.0/16"),
    st.sampled_from(SPELLINGS),
)
def test_a_non_public_address_in_any_spelling_is_refused_before_the_fetch(
    address: ipaddress.IPv4Address, spell: Callable[[ipaddress.IPv4Address], str]
) -> None:
    with pytest.raises(FetchError) as refused:
        asyncio.run(check_destination(f"http://{spell(address)}/a.wav", DEFAULT))
    assert refused.value.code in ("url_not_allowed", "invalid_url")


def test_a_name_that_does_not_resolve_yet_is_left_to_the_fetch() -> None:
    asyncio.run(check_destination("https://no-such-host.invalid/a.wav", DEFAULT))


def certificate(directory: Path, name: str) -> ssl.SSLContext:
    """A server context with a new self-signed certificate for `name`, which `directory/cert.pem` holds."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize(("certified", "fetched"), [("audio.tls.test", True), ("other.tls.test", False)])
def test_https_to_the_checked_address_verifies_the_certificate_for_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, certified: str, fetched: bool
) -> None:
    # Stand-ins: the resolver (audio.tls.test is 127.0.0.2) and the trust store (the test's certificate).
    tls = certificate(tmp_path, certified)
    monkeypatch.setattr(certifi, "where", lambda: str(tmp_path / "cert.pem"))
    rebinding(monkeypatch, "audio.tls.test", first="127.0.0.2", then="127.0.0.2")
    with file_server("127.0.0.2", tls=tls) as checked:
        checked.files["a.wav"] = b"audio"
        url = f"https://audio.tls.test:{checked.port}/files/a.wav"
        if fetched:
            assert asyncio.run(fetch(url, CHECKED)) == b"audio"
        else:
            with pytest.raises(FetchError, match="ConnectError"):
                asyncio.run(fetch(url, CHECKED))

"""Which addresses a URL fetch may reach: public ones, and only the private ones an operator allows."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.service.fetch import FetchError, FetchPolicy, check_http_url

DEFAULT = FetchPolicy(max_bytes=1)


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

"""Where webhooks may go: address judgement, URL normalisation, resolution at subscription and a pinned connection."""

from __future__ import annotations

import asyncio
import doctest
import ipaddress
from typing import Any

import httpcore
import httpx
import pytest
from fastapi.testclient import TestClient

import alert_api.webhook_targets
from alert_api.webhook_targets import (
    PinnedBackend,
    PinnedTransport,
    UnsafeUrl,
    address_refusal,
    check_url,
    normalise_url,
    parse_ipv4,
)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(alert_api.webhook_targets).failed == 0


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("93.184.215.14", True), ("2606:4700::1111", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("255.255.255.255", False), ("192.0.2.1", False), ("198.18.0.1", False),
    ("::1", False), ("::", False), ("fe80::1", False), ("fc00::1", False), ("fd12:3456::1", False), ("ff02::1", False),
    # IPv6 that carries IPv4 is what it carries
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("::ffff:8.8.8.8", True),
    ("::127.0.0.1", False), ("::a00:1", False),
    ("64:ff9b::7f00:1", False), ("64:ff9b::a9fe:a9fe", False), ("64:ff9b::808:808", True),
    ("64:ff9b:1::808:808", False),
    ("2002:7f00:1::1", False), ("2002:a00:1::", False), ("2002:808:808::1", True),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo, client 192.0.2.45
    ("2001:0:7f00:1:8000:63bf:f7f7:f7f7", False),  # Teredo, server 127.0.0.1, client 8.8.8.8
])
def test_addresses_are_judged_by_what_they_reach(address: str, public: bool) -> None:
    assert (address_refusal(ipaddress.ip_address(address)) is None) is public


@pytest.mark.parametrize(("host", "expected"), [
    ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("127.1", "127.0.0.1"),
    ("0x7F000001", "127.0.0.1"), ("017700000001", "127.0.0.1"), ("10.0x10.1", "10.16.0.1"),
    ("169.254.43518", "169.254.169.254"), ("8.8.8.8.", "8.8.8.8"), ("0", "0.0.0.0"),
])
def test_every_spelling_of_an_ipv4_address_is_read_as_one(host: str, expected: str) -> None:
    assert str(parse_ipv4(host)) == expected
    assert normalise_url(f"https://{host}/h", allow_insecure=True).url == f"https://{expected}/h"
    if expected != "8.8.8.8":
        with pytest.raises(UnsafeUrl, match="not a public address"):
            check_url(f"https://{host}/h", allow_insecure=False, resolver=_never)


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "1.2.3.0x100", "08.1", "1.16777216", "1.2.3.09"])
def test_a_host_ending_in_a_number_must_be_a_valid_address(host: str) -> None:
    with pytest.raises(UnsafeUrl):
        normalise_url(f"https://{host}/h", allow_insecure=True)


@pytest.mark.parametrize(("raw", "stored"), [
    ("https://nav.example/hooks\n", "https://nav.example/hooks"),
    ("  https://nav.example/hooks\t", "https://nav.example/hooks"),
    ("HTTPS://NAV.Example/Hooks", "https://nav.example/Hooks"),
    ("https://nav.example", "https://nav.example/"),
    ("https://nav.example:8443/h?a=1&b=x y".replace(" ", "%20"), "https://nav.example:8443/h?a=1&b=x%20y"),
    ("https://bücher.example/hooks", "https://xn--bcher-kva.example/hooks"),
    ("https://ナビ.example/フック", "https://xn--hdks.example/%E3%83%95%E3%83%83%E3%82%AF"),
    ("https://nav.example/hooks#frag", "https://nav.example/hooks"),
    ("https://[2606:4700:0::1111]/h", "https://[2606:4700::1111]/h"),
])
def test_urls_are_normalised_to_what_delivery_uses(raw: str, stored: str) -> None:
    assert normalise_url(raw, allow_insecure=False).url == stored
    assert httpx.URL(stored)  # delivery parses it


@pytest.mark.parametrize("raw", [
    "https://nav.example:99999/hooks", "https://nav.example:0/hooks", "https://nav.example:https/hooks",
    "https://nav .example/hooks", "https://nav.example/ho oks", "https://nav.example/hooks\x00",
    "https://nav.example/a\nb", "https://-nav.example/", "https://nav..example/", "https://[fe80::1%25eth0]/",
    "https://[::1/", "ftp://nav.example/", "https://user:pw@nav.example/", "https:///hooks", "nav.example/hooks",
    "https://" + "a" * 64 + ".example/",
])
def test_urls_that_cannot_be_delivered_are_refused(raw: str) -> None:
    with pytest.raises(UnsafeUrl):
        normalise_url(raw, allow_insecure=True)


def _never(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} is an address and needs no resolution")


def test_subscription_resolves_the_host_and_refuses_any_private_answer_without_naming_it() -> None:
    answers = {"nav.example": ["93.184.215.14"], "inside.example": ["93.184.215.14", "10.0.0.7"],
               "mapped.example": ["::ffff:169.254.169.254"]}

    def resolver(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("Name or service not known")
        return answers[host]

    assert check_url("https://nav.example/h", allow_insecure=False, resolver=resolver) == "https://nav.example/h"
    for host in ("inside.example", "mapped.example"):
        with pytest.raises(UnsafeUrl) as refused:
            check_url(f"https://{host}/h", allow_insecure=False, resolver=resolver)
        assert str(refused.value) == "the webhook host is not a public address"
    with pytest.raises(UnsafeUrl, match="does not resolve"):
        check_url("https://nowhere.example/h", allow_insecure=False, resolver=resolver)
    with pytest.raises(UnsafeUrl, match="not a public address"):
        check_url("https://localhost/h", allow_insecure=False, resolver=_never)


def test_the_subscription_route_stores_the_normalised_url_or_answers_422(app_factory: Any, callers_for: Any) -> None:
    app = app_factory(webhook_allow_insecure=False)
    with TestClient(app) as client:
        app.state.resolver = lambda host, port: ["93.184.215.14"] if host != "rebind.example" else ["127.0.0.1"]
        _, headers = callers_for(client).partner("alerts:read", "webhooks:receive")
        answer = client.put("/v1/partner/webhook", headers=headers, json={"url": "https://Nav.example/hooks\n"})
        assert answer.status_code == 200 and answer.json()["url"] == "https://nav.example/hooks"
        assert client.get("/v1/partner", headers=headers).json()["webhook_url"] == "https://nav.example/hooks"
        for url in ("https://nav.example:99999/h", "https://0x7f.1/h", "https://rebind.example/h"):
            refused = client.put("/v1/partner/webhook", headers=headers, json={"url": url})
            assert refused.status_code == 422, url
            assert "127.0.0.1" not in refused.text


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records the addresses it is asked to connect to, and connects to none."""

    def __init__(self) -> None:
        self.connects: list[str] = []

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's
                          local_address: str | None = None,
                          socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        self.connects.append(host)
        raise httpcore.ConnectError("recorded, not connected")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def test_a_rebinding_resolver_cannot_move_the_connection_to_a_private_address() -> None:
    """The resolver answers public, then private (DNS rebinding); the connection goes only where was checked."""
    answers = [["93.184.215.14"], ["127.0.0.1"], ["127.0.0.1"]]
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers.pop(0)

    inner = RecordingBackend()

    async def post() -> list[BaseException | httpx.Response]:
        transport = PinnedTransport(PinnedBackend(rebinding, inner=inner), httpx.Limits(max_connections=4))
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            return await asyncio.gather(client.post("https://rebind.example/hooks", content=b"{}"),
                                        client.post("https://rebind.example/hooks", content=b"{}"),
                                        return_exceptions=True)

    first, second = asyncio.run(post())
    assert isinstance(first, httpx.ConnectError) or isinstance(second, httpx.ConnectError)
    assert inner.connects == ["93.184.215.14"]  # the public answer it checked; never 127.0.0.1
    assert asked == ["rebind.example", "rebind.example"]
    refused = first if isinstance(first, UnsafeUrl) else second
    assert isinstance(refused, UnsafeUrl) and "127.0.0.1" not in str(refused)

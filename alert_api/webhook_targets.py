"""Where webhooks may go: URL normalisation and the public-address rule (server-side request forgery).

A webhook URL is normalised once, at subscription, into the form delivery uses
(:func:`normalise_url`); what is stored is exactly what was checked. Then:

- **Hosts are resolved and judged at subscription and at every delivery.**
  Every address a name resolves to must be public (:func:`address_refusal`); a
  name that resolves to one non-public address is refused as a whole.
- **Delivery connects to an address it judged.** :class:`PinnedBackend` is the
  network backend of the delivery client: it resolves the host itself, judges
  the answers and opens the TCP connection to one of exactly those addresses,
  while TLS still verifies the certificate for the name (SNI and the ``Host``
  header stay the name). A resolver that answers differently a moment later
  (DNS rebinding) cannot swap the address between the check and the connection.
- **IPv4 in every spelling.** ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and
  ``127.1`` are all 127.0.0.1 to ``inet_aton`` and to browsers' URL parsers;
  a host whose last label is a number is read that way (:func:`parse_ipv4`) and
  stored as a dotted quad, or refused if it is not a valid address.
- **IPv6 that carries IPv4 is judged by the IPv4 it carries**: IPv4-mapped
  (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::/96``),
  6to4 (``2002::/16``) and Teredo (``2001::/32``, server and client).
- **Partners never read resolved addresses.** Refusals say what rule failed;
  the address is logged for operators only.

``SUIBOU_ALERT_API_WEBHOOK_ALLOW_INSECURE=true`` (closed networks, tests with
loopback receivers) lifts the address rule and allows ``http``; URLs are still
normalised and every failure still counts as an attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import re
import socket
import ssl
import typing
import urllib.parse
from collections.abc import Callable, Iterable

import httpcore
import httpx
import idna

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Answers the addresses of a host name: ``resolver(host, port)``. Tests pass a fake.
Resolver = Callable[[str, int], list[str]]

MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: translators inside one network
_COMPATIBLE = ipaddress.IPv6Network("::/96")
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


class UnsafeUrl(ValueError):
    """A webhook URL that must not be called; the message is safe to show the partner."""


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answers for ``host`` (TCP), in its order of preference."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


# --------------------------------------------------------------------------- addresses


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Reads a host as ``inet_aton`` and URL parsers do, if its last label is a number.

    Returns:
        The address, or ``None`` when the host is a name (its last label is not a number).

    Raises:
        UnsafeUrl: The host ends in a number but is not a valid IPv4 address.

    Examples:
        >>> [str(parse_ipv4(h)) for h in ("2130706433", "0177.0.0.1", "0x7f.1", "127.1", "10.0.0.1.")]
        ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1', '10.0.0.1']
        >>> parse_ipv4("nav.example") is None, parse_ipv4("1.example") is None
        (True, True)
    """
    text = host.removesuffix(".")
    parts = text.split(".")
    if not _is_number(parts[-1]):
        return None
    if len(parts) > 4 or not all(_is_number(p) for p in parts):
        raise UnsafeUrl("the webhook host ends in a number but is not a valid IPv4 address")
    numbers = [_number(p) for p in parts]
    last_limit = 256 ** (5 - len(numbers))
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= last_limit:
        raise UnsafeUrl("the webhook host ends in a number but is not a valid IPv4 address")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _is_number(part: str) -> bool:
    lowered = part.lower()
    if lowered.startswith("0x"):
        return all(c in "0123456789abcdef" for c in lowered[2:])
    return part.isascii() and part.isdigit()


def _number(part: str) -> int:
    lowered = part.lower()
    if lowered.startswith("0x"):
        return int(lowered[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if any(c in "89" for c in part):
            raise UnsafeUrl("the webhook host ends in a number but is not a valid IPv4 address")
        return int(part, 8)
    return int(part)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, with the name of the form.

    Examples:
        >>> [(form, str(ip)) for form, ip in embedded_ipv4(ipaddress.IPv6Address("64:ff9b::a00:1"))]
        [('NAT64', '10.0.0.1')]
        >>> embedded_ipv4(ipaddress.IPv6Address("2606:4700::1111"))
        []
    """
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if address.ipv4_mapped is not None:
        found.append(("IPv4-mapped", address.ipv4_mapped))
    elif address in _COMPATIBLE and int(address) > 1:
        found.append(("IPv4-compatible", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    if address in _NAT64:
        found.append(("NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    if address.sixtofour is not None:
        found.append(("6to4", address.sixtofour))
    if address.teredo is not None:
        server, client = address.teredo
        found += [("Teredo server", server), ("Teredo client", client)]
    return found


def address_refusal(address: IPAddress) -> str | None:
    """Why a webhook must not be sent to ``address``, or ``None`` when it is a public unicast address.

    An IPv6 address that carries an IPv4 address is judged by what it carries.

    Examples:
        >>> address_refusal(ipaddress.ip_address("8.8.8.8")) is None
        True
        >>> address_refusal(ipaddress.ip_address("::ffff:127.0.0.1"))
        'IPv4-mapped form of a non-public IPv4 address'
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return "local-use NAT64 address"
        carried = embedded_ipv4(address)
        for form, ipv4 in carried:
            if address_refusal(ipv4) is not None:
                return f"{form} form of a non-public IPv4 address"
        if carried:
            return None
    if address.is_multicast or not address.is_global:
        return f"non-public IPv{address.version} address"
    return None


# --------------------------------------------------------------------------- URLs


@dataclasses.dataclass(frozen=True)
class WebhookTarget:
    """A normalised webhook URL and its parts.

    Attributes:
        url: The URL as stored and requested.
        host: Host name (ASCII, IDNA) or IP address, without brackets.
        port: Port, the scheme's default when the URL gives none.
        address: The host as an IP address, when it is one.
    """

    url: str
    host: str
    port: int
    address: IPAddress | None


def normalise_url(raw: str, *, allow_insecure: bool) -> WebhookTarget:
    """Checks a webhook URL's form and returns it as delivery will use it (no DNS here).

    Surrounding whitespace is dropped; a non-ASCII host becomes its IDNA (``xn--``)
    form; an IPv4 address in any spelling becomes a dotted quad; the path and query
    are percent-encoded; a fragment is dropped.

    Raises:
        UnsafeUrl: What is wrong with it.

    Examples:
        >>> normalise_url(" https://Nav.Example:8443/hooks?x=1#top\\n", allow_insecure=False).url
        'https://nav.example:8443/hooks?x=1'
        >>> normalise_url("https://bücher.example/フック", allow_insecure=False).url
        'https://xn--bcher-kva.example/%E3%83%95%E3%83%83%E3%82%AF'
        >>> normalise_url("https://0x7f.1/hooks", allow_insecure=False).url
        'https://127.0.0.1/hooks'
    """
    url = raw.strip(" \t\r\n\f\v")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"the webhook URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise UnsafeUrl("the webhook URL must not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("the webhook URL has an invalid port or host") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_insecure else ("https",)
    if scheme not in allowed:
        raise UnsafeUrl(f"the webhook URL must use {' or '.join(allowed)}")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("the webhook URL must not carry credentials")
    if port == 0:
        raise UnsafeUrl("the webhook URL has an invalid port or host")
    host, address = _normalise_host(parts.hostname or "")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    path = urllib.parse.quote(parts.path or "/", safe=_PATH_SAFE)
    query = urllib.parse.quote(parts.query, safe=_QUERY_SAFE)
    normalised = f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")
    try:
        parsed = httpx.URL(normalised)
    except httpx.InvalidURL:
        raise UnsafeUrl("the webhook URL is not valid") from None
    if parsed.raw_host.decode("ascii") != host:
        raise UnsafeUrl("the webhook URL is not valid")
    return WebhookTarget(normalised, host, port or (443 if scheme == "https" else 80), address)


def _normalise_host(host: str) -> tuple[str, IPAddress | None]:
    if not host:
        raise UnsafeUrl("the webhook URL needs a host")
    if ":" in host:  # an IPv6 literal (urlsplit has taken off the brackets)
        if "%" in host:
            raise UnsafeUrl("the webhook host must not name a network interface (IPv6 zone)")
        try:
            ipv6 = ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsafeUrl("the webhook host is not a valid IPv6 address") from None
        return ipv6.compressed, ipv6
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii") if not host.isascii() else host.lower()
    except idna.IDNAError:
        raise UnsafeUrl("the webhook host is not a valid domain name") from None
    ipv4 = parse_ipv4(ascii_host)
    if ipv4 is not None:
        return str(ipv4), ipv4
    labels = ascii_host[:-1].split(".") if ascii_host.endswith(".") else ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise UnsafeUrl("the webhook host is not a valid domain name")
    if ascii_host.rstrip(".") == "localhost" or ascii_host.rstrip(".").endswith(".localhost"):
        return ascii_host, ipaddress.IPv4Address("127.0.0.1")
    return ascii_host, None


def check_addresses(host: str, addresses: Iterable[str]) -> list[IPAddress]:
    """Judges every address of ``host``; returns them when all are public.

    Raises:
        UnsafeUrl: One is not public (the message does not name it; the log does).
    """
    judged: list[IPAddress] = []
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        reason = address_refusal(address)
        if reason is not None:
            log.warning("webhook host %s resolves to %s, a %s: refused", host, address, reason)
            raise UnsafeUrl("the webhook host is not a public address")
        judged.append(address)
    if not judged:
        raise UnsafeUrl("the webhook host does not resolve")
    return judged


def resolve_checked(target: WebhookTarget, resolver: Resolver, *, allow_private: bool) -> list[IPAddress]:
    """The addresses of a webhook host, every one judged public (or any, with ``allow_private``).

    Raises:
        UnsafeUrl: The host does not resolve, or resolves to a non-public address.
    """
    if target.address is not None:
        addresses = [str(target.address)]
    else:
        try:
            addresses = resolver(target.host, target.port)
        except (OSError, UnicodeError):
            raise UnsafeUrl("the webhook host does not resolve") from None
    if allow_private:
        if not addresses:
            raise UnsafeUrl("the webhook host does not resolve")
        return [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
    return check_addresses(target.host, addresses)


def check_url(url: str, *, allow_insecure: bool, resolver: Resolver = system_resolver) -> str:
    """Normalises a webhook URL and, unless ``allow_insecure``, resolves its host and judges every address.

    Returns:
        The URL to store: exactly what was checked.

    Raises:
        UnsafeUrl: Why not.
    """
    target = normalise_url(url, allow_insecure=allow_insecure)
    if not allow_insecure:
        resolve_checked(target, resolver, allow_private=False)
    return target.url


# --------------------------------------------------------------------------- the pinned connection


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Network backend that connects only to addresses it resolved and judged itself.

    httpcore asks it for a TCP connection to ``(host, port)`` of the URL; it
    resolves the host (``resolver`` on a worker thread), judges every answer
    (unless ``allow_private``) and connects to the first that accepts, by
    address. TLS is started afterwards by httpcore with the URL's host name, so
    certificates are verified for the name.
    """

    def __init__(self, resolver: Resolver = system_resolver, *, allow_private: bool = False,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._resolver = resolver
        self._allow_private = allow_private
        self._inner = inner or httpcore.AnyIOBackend()


    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:
        target = normalise_url(f"https://{_bracketed(host)}:{port}/", allow_insecure=True)
        if target.address is not None:  # an address: nothing to resolve
            addresses = resolve_checked(target, self._resolver, allow_private=self._allow_private)
        else:
            addresses = await asyncio.to_thread(resolve_checked, target, self._resolver,
                                                allow_private=self._allow_private)
        error: Exception | None = None
        for address in addresses[:3]:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout=timeout,
                                                     local_address=local_address, socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failure:
                error = failure
        assert error is not None
        raise error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109 - as above
                                  socket_options: typing.Iterable[typing.Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise UnsafeUrl("webhooks are not sent over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on a :class:`PinnedBackend`, ignoring proxy variables."""

    def __init__(self, backend: PinnedBackend, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        ssl_context = ssl_context or httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend)


_ADDRESS_TEXT = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\[?\b[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}\b\]?")


def without_addresses(text: str) -> str:
    """``text`` with IP addresses replaced by ``<address>``: for anything a partner can read.

    Examples:
        >>> without_addresses("connect to 10.0.0.7:443 failed; also fe80::1")
        'connect to <address>:443 failed; also <address>'
    """
    return _ADDRESS_TEXT.sub("<address>", text)


__all__ = [
    "PinnedBackend", "PinnedTransport", "Resolver", "UnsafeUrl", "WebhookTarget", "address_refusal", "check_addresses",
    "check_url", "embedded_ipv4", "normalise_url", "parse_ipv4", "resolve_checked", "system_resolver",
    "without_addresses",
]

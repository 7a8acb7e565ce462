"""The address of the client a request comes from, for throttles and the audit log.

``X-Forwarded-For`` is believed only when the connection comes from a proxy
listed in ``SUIBOU_ALERT_API_TRUSTED_PROXIES`` (IP addresses or networks;
default none: the header is ignored). Then the header is read from the right,
skipping the trusted proxies, and the first address that is not one of them is
the client's (anything left of it may have been written by the client itself).

Examples:
    >>> proxies = parse_networks(["10.0.0.0/8"])
    >>> client_address("10.1.2.3", "198.51.100.7, 10.9.9.9", proxies)
    '198.51.100.7'
    >>> client_address("127.0.0.1", "198.51.100.7", [])  # not a trusted proxy: the header is ignored
    '127.0.0.1'
    >>> client_address("10.1.2.3", "forged, 203.0.113.5", proxies)
    '203.0.113.5'
    >>> client_address("10.1.2.3", "not-an-address", proxies)
    '10.1.2.3'
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    """IP addresses or networks (``192.0.2.1``, ``10.0.0.0/8``, ``::1``).

    Raises:
        ValueError: Not an address or network.
    """
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values]


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == network.version and ip in network for network in trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str | None:
    """The client's address: ``peer``, or from ``X-Forwarded-For`` when ``peer`` is a trusted proxy."""
    if peer is None or not forwarded_for or not trusted or not _is_trusted(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")][:32]):
        try:
            address = str(ipaddress.ip_address(hop))
        except ValueError:
            return peer
        if not _is_trusted(address, trusted):
            return address
    return peer


__all__ = ["Network", "client_address", "parse_networks"]

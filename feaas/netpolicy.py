"""Which network destinations an action's outbound requests may reach (issue 12, SPEC §8.2).

A task runs inside the customer's VPC, next to the ECS metadata and credentials endpoints and
whatever else the subnet can reach. A URL chosen by a user must never point the worker at any of
that, so every destination whose address is not a public unicast address is refused: loopback,
link-local (169.254.0.0/16 with the ECS endpoints 169.254.170.2 and 169.254.169.254, fe80::/10),
private (10/8, 172.16/12, 192.168/16, fc00::/7), shared address space (100.64/10, CGNAT),
unspecified, multicast and reserved. IPv6 forms that carry an IPv4 address (IPv4-mapped, 6to4,
Teredo, NAT64) are judged by that IPv4 address.

A host is judged by *every* address it resolves to, and a connection then goes to one of those
vetted addresses, never to the name again (so a second DNS answer cannot rebind it).

Tests may let named loopback ``ip:port`` pairs through (``SCREENSHOT_ALLOW_HOSTS``); nothing else
can be allowed, and the default allows nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

from feaas.errors import WorkerError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known NAT64 prefix
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use NAT64


class DestinationRefused(WorkerError):
    """A destination the policy does not allow; ``str()`` is the message for the user."""

    def __init__(self, host: str, ip: str, why: str) -> None:
        super().__init__(f"destination not allowed: {host} ({ip}, {why})")
        self.host, self.ip, self.why = host, ip, why


class HostNotFound(WorkerError):
    """The host name does not resolve."""

    def __init__(self, host: str) -> None:
        super().__init__(f"host not found: {host}")
        self.host = host


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address; the server part is public by construction
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be reached (``"loopback"``, ``"link-local"``, …), or ``None`` when it is
    a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return forbidden_reason(inner)
        if ip.scope_id:
            return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared address space (CGNAT)"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not a public address"
    return None


def parse_ip(text: str) -> IPAddress | None:
    """``text`` as an IP address (IPv6 with or without brackets and zone), else ``None``."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP), in the resolver's order, without duplicates."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise HostNotFound(host) from None
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    if not seen:
        raise HostNotFound(host)
    return seen


@dataclass(frozen=True)
class NetworkPolicy:
    """Public destinations only, plus the exact loopback ``(ip, port)`` pairs in ``allowed``
    (a test-only setting; :func:`parse_allow_list` refuses anything but loopback)."""

    allowed: frozenset[tuple[str, int]] = frozenset()
    resolver: Resolver = system_resolver

    def vet(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host:port``.

        Raises :class:`DestinationRefused` when any address ``host`` resolves to is forbidden
        (naming the first such address and why), :class:`HostNotFound` when it does not resolve.
        No connection is made here.
        """
        literal = parse_ip(host)
        addresses = [str(literal)] if literal is not None else self.resolver(host, port)
        for address in addresses:
            ip = parse_ip(address)
            if ip is None:
                raise DestinationRefused(host, address, "not an IP address")
            if (str(ip), port) in self.allowed:
                continue
            why = forbidden_reason(ip)
            if why is not None:
                raise DestinationRefused(host, str(ip), why)
        return [str(parse_ip(a)) for a in addresses]


def parse_allow_list(text: str) -> frozenset[tuple[str, int]]:
    """``"127.0.0.1:8080,[::1]:9000"`` → ``{("127.0.0.1", 8080), ("::1", 9000)}``.

    Only loopback addresses with an explicit port are accepted: the setting exists so tests can
    reach a server they started, and can never open the metadata endpoints or a private network.
    Raises :class:`ValueError` saying what is wrong (configuration errors never repeat values).
    """
    allowed: set[tuple[str, int]] = set()
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        host, sep, port_text = entry.rpartition(":")
        ip = parse_ip(host) if sep else None
        if ip is None or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError("entries must be IP:PORT, separated by commas")
        if not ip.is_loopback:
            raise ValueError("only loopback addresses (127.0.0.0/8, ::1) can be allowed: "
                             "it is a test-only setting")
        allowed.add((str(ip), int(port_text)))
    return frozenset(allowed)


"""Where the crawler may connect: every host is resolved first and refused when any address it resolves
to is not globally routable, unless that address is allow-listed.

Refused: private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback (127/8, ::1), link-local
(169.254/16 with the cloud metadata service at 169.254.169.254, fe80::/10), multicast, reserved,
unspecified, shared (100.64/10), documentation and benchmark ranges: whatever `ipaddress` does not call
global. IPv6 addresses that carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, 6to4, Teredo, NAT64
64:ff9b::/96) are judged by the IPv4 address as well. The crawler then connects to the address that was
checked, never resolving the name again, so a DNS answer cannot change between check and connect.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: neither private nor global


class Refused(Exception):
    """A URL the crawler will not connect to; `reason` is a stats key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Target:
    """A checked address to connect to: the family and the sockaddr host."""

    family: int
    ip: str


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class AddressPolicy:
    """Decides whether an address may be connected to."""

    def __init__(self, allow: list[str] | tuple[str, ...] = ()):
        self.allow = [ipaddress.ip_network(entry, strict=False) for entry in allow]

    def allowed(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.allow)

    def problem(self, address: IPAddress) -> str | None:
        """None if the address may be fetched, else why not (a stats reason)."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and (v4 := embedded_ipv4(address)) is not None:
            candidates = [v4] if address.ipv4_mapped is not None else [address, v4]
        for candidate in candidates:
            if self.allowed(candidate):
                continue
            if not candidate.is_global or candidate.is_multicast:
                return _kind(candidate)
        return None

    def resolve(self, host: str, port: int) -> Target:
        """Resolve `host` and check every address it resolves to; the first address to connect to.

        Raises Refused before any connection: `unresolvable` when DNS has no answer, `<kind>_address`
        (private, loopback, link_local, multicast, reserved, ...) when any answer is not allowed.
        """
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError, OSError) as err:
                raise Refused("unresolvable", f"{host}: {err}") from None
            addresses = []
            for info in infos:
                ip = ipaddress.ip_address(info[4][0].split("%")[0])
                if ip not in addresses:
                    addresses.append(ip)
            if not addresses:
                raise Refused("unresolvable", host)
        # Refuse when any answer is off limits: a name that also resolves inward is not trusted.
        for address in addresses:
            if (kind := self.problem(address)) is not None:
                shown = host if literal is not None else f"{host} -> {address}"
                raise Refused(f"{kind}_address", shown)
        first = addresses[0]
        if isinstance(first, ipaddress.IPv6Address) and first.ipv4_mapped is not None:
            return Target(socket.AF_INET, str(first.ipv4_mapped))
        return Target(socket.AF_INET6 if first.version == 6 else socket.AF_INET, str(first))


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if address in _SHARED:
        return "shared"
    return "non_global"

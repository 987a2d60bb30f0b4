"""Client addresses: which one to believe, and how much of it to keep."""

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

from app.config import Network

Address = IPv4Address | IPv6Address


def parse_ip(text: str) -> Address | None:
    text = text.strip().strip('"')
    try:  # the usual case, a plain IPv4 address, at a fifth of ip_address()'s cost
        return IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except OSError:
        pass
    if text.startswith("["):  # [v6]:port, as in Forwarded
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1, from a dual-stack socket (--host ::)
    return address


def _forwarded_for(header: str) -> list[str]:
    """The `for=` values of an RFC 7239 Forwarded header, in order."""
    hops = []
    for element in header.split(","):
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.lower() == "for":
                hops.append(value)
    return hops


class ClientResolver:
    """The client address of a request: the TCP peer, unless the peer is a trusted proxy,
    in which case the rightmost hop of its forwarding headers that is not itself trusted."""

    def __init__(self, trusted: list[Network]) -> None:
        self.trusted = trusted
        # Each network as (version, first address, mask), compared as integers: a redirect
        # asks this of every hop, and `address in network` costs several times more.
        self._ranges = [(n.version, int(n.network_address), int(n.netmask)) for n in trusted]

    def is_trusted(self, address: Address) -> bool:
        value, version = int(address), address.version
        return any(v == version and value & mask == first for v, first, mask in self._ranges)

    def resolve(
        self, peer: str, forwarded_for: str, real_ip: str, forwarded: str
    ) -> Address | None:
        client = parse_ip(peer)
        if client is None or not self.is_trusted(client):
            return client
        if forwarded_for:
            hops = forwarded_for.split(",")
        elif real_ip:
            hops = [real_ip.rsplit(",", 1)[-1]]  # one address: on several lines, the last
        else:
            hops = _forwarded_for(forwarded)
        for hop in reversed(hops):
            address = parse_ip(hop)
            if address is None:
                break  # garbage: keep the last hop we could verify
            client = address
            if not self.is_trusted(address):
                break
        return client


def stored_ip(address: Address | None, mode: str) -> str | None:
    """The address as TAUTAN_STORE_IP says to keep it: none, anonymized (/24, /48) or full."""
    if address is None or mode == "none":
        return None
    if mode == "full":
        return str(address)
    if address.version == 4:
        return str(IPv4Address(int(address) & ~0xFF))  # the /24
    return str(IPv6Address(int(address) & ~((1 << 80) - 1)))  # the /48


def is_ignored(address: Address | None, networks: list[Network]) -> bool:
    return address is not None and any(address in network for network in networks)

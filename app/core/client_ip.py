"""Client addresses: which one to believe, and how much of it to keep."""

import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


class Networks:
    """A set of networks that answers `address in networks` with integer compares: the
    redirect and the writer ask it of every new address, and `address in network` costs
    several times more."""

    def __init__(self, networks: list[Network]) -> None:
        self.networks = networks
        self._ranges = [(n.version, int(n.network_address), int(n.netmask)) for n in networks]
        # The first bytes of the IPv4 addresses in any of them: most addresses a writer
        # meets are in none, and this tells so with one set lookup.
        self._v4_first_bytes = {
            first_byte
            for n in networks
            if n.version == 4
            for first_byte in range(
                int(n.network_address) >> 24, (int(n.broadcast_address) >> 24) + 1
            )
        }

    def __contains__(self, address: Address) -> bool:
        value, version = int(address), address.version
        if version == 4 and value >> 24 not in self._v4_first_bytes:
            return False
        return any(v == version and value & mask == first for v, first, mask in self._ranges)


# IPv4 addresses with no place on a map: IANA's special-purpose ranges (private, shared,
# loopback, link-local, documentation, benchmarking), multicast and reserved.
NOT_ON_A_MAP_V4 = Networks([ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
)])  # fmt: skip


def on_a_map(address: Address) -> bool:
    """Whether an address can be somewhere: a public one."""
    if address.version == 4:
        return address not in NOT_ON_A_MAP_V4
    # is_global leaves out private, loopback, link-local and reserved ranges, not multicast.
    return address.is_global and not address.is_multicast


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
        self.trusted = Networks(trusted)

    def resolve(
        self, peer: str, forwarded_for: str, real_ip: str, forwarded: str
    ) -> Address | None:
        client = parse_ip(peer)
        if client is None or client not in self.trusted:
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
            if address not in self.trusted:
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

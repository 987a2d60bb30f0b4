from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.clicks.enrich.language import primary_language
from app.core.client_ip import ClientResolver, Networks, on_a_map, stored_ip

TRUSTED = [ip_network("127.0.0.1/32"), ip_network("::1/128"), ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "xff", "real_ip", "forwarded", "expected"),
    [
        # an untrusted peer is the client, whatever it claims
        ("203.0.113.9", "1.1.1.1", "2.2.2.2", "for=3.3.3.3", "203.0.113.9"),
        # a trusted proxy: the rightmost hop that is not itself trusted
        ("127.0.0.1", "198.51.100.7", "", "", "198.51.100.7"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", "", "", "198.51.100.7"),  # 6.6.6.6 is spoofed
        ("10.0.0.2", "198.51.100.7, 10.0.0.5", "", "", "198.51.100.7"),
        ("127.0.0.1", "10.0.0.9, 10.0.0.5", "", "", "10.0.0.9"),  # all trusted: the leftmost
        ("127.0.0.1", "1.2.3.4, garbage, ::1", "", "", "::1"),  # garbage stops the walk
        ("127.0.0.1", "2001:db8::1", "", "", "2001:db8::1"),
        ("127.0.0.1", "198.51.100.7:4711", "", "", "198.51.100.7"),
        ("127.0.0.1", "", "198.51.100.8", "", "198.51.100.8"),
        # X-Real-IP on two lines (read as one list): the proxy's own line is the last
        ("127.0.0.1", "", "6.6.6.6, 198.51.100.8", "", "198.51.100.8"),
        ("127.0.0.1", "", "", 'for="[2001:db8::7]:4711";proto=https', "2001:db8::7"),
        ("127.0.0.1", "", "", "for=192.0.2.60;proto=http, for=10.0.0.3", "192.0.2.60"),
        ("127.0.0.1", "", "", "for=unknown", "127.0.0.1"),
        ("::1", "", "", "", "::1"),
        # a dual-stack socket (--host ::) reports IPv4 peers as IPv4-mapped IPv6
        ("::ffff:127.0.0.1", "198.51.100.7", "", "", "198.51.100.7"),
        ("::ffff:203.0.113.9", "1.1.1.1", "", "", "203.0.113.9"),
        ("127.0.0.1", "::ffff:198.51.100.7", "", "", "198.51.100.7"),
        ("", "1.1.1.1", "", "", None),
    ],
)
def test_client_ip_believes_only_trusted_proxies(
    peer: str, xff: str, real_ip: str, forwarded: str, expected: str | None
) -> None:
    resolved = ClientResolver(TRUSTED).resolve(peer, xff, real_ip, forwarded)
    assert resolved == (ip_address(expected) if expected else None)


@pytest.mark.parametrize(
    ("ip", "mode", "expected"),
    [
        ("198.51.100.77", "anonymized", "198.51.100.0"),
        ("2001:db8:abcd:12:1:2:3:4", "anonymized", "2001:db8:abcd::"),
        ("198.51.100.77", "full", "198.51.100.77"),
        ("198.51.100.77", "none", None),
    ],
)
def test_stored_ip(ip: str, mode: str, expected: str | None) -> None:
    assert stored_ip(ip_address(ip), mode) == expected


def test_ignored_networks() -> None:
    office = Networks([ip_network("198.51.100.0/24"), ip_network("2001:db8:1::/48")])
    assert ip_address("198.51.100.9") in office
    assert ip_address("198.51.101.9") not in office
    assert ip_address("2001:db8:1:2::9") in office
    assert ip_address("2001:db8:2::9") not in office


@given(
    networks=st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
            lambda n: IPv4Network((n[0], n[1]), strict=False)
        ),
        max_size=6,
    ),
    addresses=st.lists(st.integers(0, 2**32 - 1).map(IPv4Address), min_size=1, max_size=20),
)
def test_networks_answer_as_ipaddress_does(
    networks: list[IPv4Network], addresses: list[IPv4Address]
) -> None:
    """Wide networks too (a /0, a /3 across many first bytes): the quick test of an
    address's first byte never answers differently from `address in network`."""
    within = Networks(list(networks))
    for address in addresses:
        assert (address in within) == any(address in n for n in networks)
    for network in networks:  # each network's ends are in it
        assert network.network_address in within and network.broadcast_address in within


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("id-ID,id;q=0.9,en-US;q=0.8", "id"),
        ("en-GB", "en"),
        ("FR", "fr"),
        ("*", None),
        ("", None),
        ("zz-€€€", "zz"),
        ("€€", None),
        ("x" * 300, None),
    ],
)
def test_primary_language(header: str, expected: str | None) -> None:
    assert primary_language(header) == expected


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("9.255.255.255", True), ("10.0.0.0", False), ("10.255.255.255", False),
        ("11.0.0.0", True), ("100.63.255.255", True), ("100.64.0.0", False),
        ("100.127.255.255", False), ("100.128.0.0", True), ("172.15.255.255", True),
        ("172.16.0.1", False), ("172.31.255.255", False), ("172.32.0.0", True),
        ("192.0.2.1", False), ("192.0.3.1", True), ("198.17.255.255", True),
        ("198.18.0.0", False), ("198.19.255.255", False), ("198.20.0.0", True),
        ("203.0.113.255", False), ("223.255.255.255", True), ("224.0.0.0", False),
        ("255.255.255.255", False), ("2001:db8::1", False), ("fe80::1", False),
        ("ff02::1", False), ("2a00:1450:4001::1", True),
    ],
)  # fmt: skip
def test_only_public_addresses_are_on_a_map(ip: str, public: bool) -> None:
    assert on_a_map(ip_address(ip)) is public

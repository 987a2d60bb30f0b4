"""GeoLookup against small .mmdb files written here in MaxMind's City and Country shapes."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.clicks.enrich.geo import NO_GEO, Geo, GeoLookup
from tests.support.geo import JAKARTA, JAKARTA_V4, MUNICH, write_mmdb

COUNTRY_ONLY = {"country": {"iso_code": "SG", "names": {"en": "Singapore"}}}

JAKARTA_V6 = "2001:448a::/32"
MUNICH_V4 = "85.0.0.0/13"


@pytest.fixture
def city_db(tmp_path: Path) -> Path:
    return write_mmdb(
        tmp_path / "GeoLite2-City.mmdb",
        "GeoLite2-City",
        {JAKARTA_V4: JAKARTA, JAKARTA_V6: JAKARTA, MUNICH_V4: MUNICH},
    )


@pytest.fixture
def country_db(tmp_path: Path) -> Path:
    return write_mmdb(
        tmp_path / "GeoLite2-Country.mmdb",
        "GeoLite2-Country",
        {JAKARTA_V4: JAKARTA, "8.0.0.0/8": COUNTRY_ONLY},
    )


@pytest.fixture
def city(city_db: Path) -> Iterator[GeoLookup]:
    geo = GeoLookup(str(city_db))
    yield geo
    geo.close()


JAKARTA_GEO = Geo(
    country="ID",
    region="Jakarta",
    city="Jakarta",
    latitude=-6.21,
    longitude=106.85,
    timezone="Asia/Jakarta",
)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("36.66.1.2", JAKARTA_GEO),
        ("2001:448a:1000::1", JAKARTA_GEO),
        ("::ffff:36.66.1.2", JAKARTA_GEO),  # IPv4 as a dual-stack socket reports it
        (" 36.66.1.2 ", JAKARTA_GEO),
        (
            "85.1.2.3",
            Geo(
                country="DE",
                region="Upper Bavaria",
                city="Munich",
                latitude=48.14,
                longitude=11.58,
                timezone="Europe/Berlin",
            ),
        ),
    ],
)
def test_city_lookup(city: GeoLookup, ip: str, expected: Geo) -> None:
    assert city.lookup(ip) == expected
    assert city.country(ip) == expected.country  # what the redirect's rules ask


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",  # private
        "172.16.0.1",
        "192.168.1.10",
        "127.0.0.1",  # loopback
        "::1",
        "169.254.1.1",  # link-local
        "fe80::1",
        "fe80::1%eth0",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "255.255.255.255",
        "240.0.0.1",  # reserved
        "224.0.0.1",  # multicast
        "ff02::1",
        "2001:db8::1",  # documentation
        "::ffff:192.168.1.10",
        "",
        "not an ip",
        "999.1.1.1",
        "36.66.1.2.5",
        "1.1.1.1",  # public, but not in this database
        "2a00:1450:4001::1",
    ],
)
def test_no_place_on_the_map(city: GeoLookup, ip: str) -> None:
    assert city.lookup(ip) is NO_GEO
    assert city.country(ip) is None


def test_country_database_gives_only_the_country(country_db: Path) -> None:
    geo = GeoLookup(str(country_db))
    try:
        assert geo.lookup("36.66.1.2") == Geo(country="ID")
        assert geo.country("36.66.1.2") == "ID"
        assert geo.lookup("8.8.8.8") == Geo(country="SG")
        assert geo.lookup("85.1.2.3") is NO_GEO
        assert geo.lookup("10.0.0.1") is NO_GEO
    finally:
        geo.close()


def test_no_database_means_no_geography() -> None:
    geo = GeoLookup(None)
    assert geo.lookup("36.66.1.2") is NO_GEO
    assert geo.country("36.66.1.2") is None
    assert geo.reload_if_changed() is False
    geo.close()


def test_a_missing_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="TAUTAN_GEOIP_DB"):
        GeoLookup(str(tmp_path / "missing.mmdb"))


def test_a_database_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = write_mmdb(tmp_path / "asn.mmdb", "GeoLite2-ASN", {JAKARTA_V4: {"x": 1}})
    with pytest.raises(ValueError, match="City or Country"):
        GeoLookup(str(path))


def test_lookups_are_memoised(city: GeoLookup) -> None:
    assert city.lookup("36.66.1.2") is city.lookup("36.66.1.2")


def test_reload_after_an_atomic_swap(tmp_path: Path, city_db: Path) -> None:
    geo = GeoLookup(str(city_db))
    try:
        assert geo.lookup("36.66.1.2").country == "ID"
        assert geo.reload_if_changed() is False  # nothing changed yet

        # The new database moves 36.64.0.0/12 to Germany; it lands with one rename.
        staged = write_mmdb(tmp_path / "staged.mmdb", "GeoLite2-City", {JAKARTA_V4: MUNICH})
        os.replace(staged, city_db)

        assert geo.reload_if_changed() is True
        assert geo.lookup("36.66.1.2").country == "DE"  # the memo was cleared
        assert geo.lookup("2001:448a:1000::1") is NO_GEO
        assert geo.reload_if_changed() is False
    finally:
        geo.close()


def test_a_bad_new_file_keeps_the_old_database(city_db: Path) -> None:
    geo = GeoLookup(str(city_db))
    try:
        staged = city_db.with_name("staged.mmdb")
        staged.write_bytes(b"not a MaxMind database")
        os.replace(staged, city_db)
        assert geo.reload_if_changed() is False
        assert geo.lookup("36.66.1.2").country == "ID"
    finally:
        geo.close()


def test_closed_lookup_answers_no_geo(city_db: Path) -> None:
    geo = GeoLookup(str(city_db))
    geo.close()
    assert geo.lookup("36.66.1.2") is NO_GEO


def test_the_record_shape_of_the_ip_location_db_mirror(tmp_path: Path) -> None:
    """DB-IP Country Lite as ip-location-db republishes it: a lower-case type, and the
    country as `country_code`."""
    path = write_mmdb(
        tmp_path / "dbip-country.mmdb", "country ipvAll", {JAKARTA_V4: {"country_code": "ID"}}
    )
    geo = GeoLookup(str(path))
    try:
        assert geo.lookup("36.66.1.2") == Geo(country="ID")
        assert geo.country("36.66.1.2") == "ID"
        assert geo.lookup("85.1.2.3") is NO_GEO
    finally:
        geo.close()


def test_a_file_that_may_be_missing_is_opened_once_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "dbip-country-lite.mmdb"
    geo = GeoLookup(str(path), missing_ok=True)
    try:
        assert geo.lookup("36.66.1.2") is NO_GEO
        assert geo.country("36.66.1.2") is None  # not memoised: asked again below
        assert geo.reload_if_changed() is False

        staged = write_mmdb(tmp_path / "staged.mmdb", "DBIP-Country-Lite", {JAKARTA_V4: JAKARTA})
        os.replace(staged, path)

        assert geo.reload_if_changed() is True
        assert geo.lookup("36.66.1.2") == Geo(country="ID")
        assert geo.country("36.66.1.2") == "ID"
        assert geo.reload_if_changed() is False
    finally:
        geo.close()

"""Small real .mmdb geography databases, written with mmdb-writer, and the places in them."""

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

JAKARTA = {
    "continent": {"code": "AS", "names": {"en": "Asia"}},
    "country": {"iso_code": "ID", "names": {"en": "Indonesia"}},
    "subdivisions": [{"iso_code": "JK", "names": {"en": "Jakarta"}}],
    "city": {"names": {"en": "Jakarta"}},
    "location": {"latitude": -6.2146, "longitude": 106.8451, "time_zone": "Asia/Jakarta"},
}


MUNICH = {
    "country": {"iso_code": "DE", "names": {"en": "Germany"}},
    # Most specific last, as MaxMind orders them: Bavaria, then Upper Bavaria.
    "subdivisions": [
        {"iso_code": "BY", "names": {"en": "Bavaria"}},
        {"iso_code": "091", "names": {"en": "Upper Bavaria"}},
    ],
    "city": {"names": {"en": "Munich", "de": "München"}},
    "location": {"latitude": 48.1374, "longitude": 11.5755, "time_zone": "Europe/Berlin"},
}


JAKARTA_V4 = "36.64.0.0/12"


def write_mmdb(path: Path, database_type: str, networks: dict[str, dict[str, Any]]) -> Path:
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,  # IPv4 under ::/96, as in MaxMind's own databases
        database_type=database_type,
        languages=["en"],
        description="Tautan test database",
    )
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path

"""The spool of the versions before the click log, converted into the click log once: each
old line made what the redirect logs now, the old file gone only once its segment is safe,
and a conversion cut short at any step finished or done again, never twice."""

import fcntl
import json
from pathlib import Path

from app.clicks.intake import ClientIntake
from app.clicks.log import LogReader, segment_paths
from app.clicks.old_spool import convert_old_spool
from app.config import Settings
from tests.support.databases import run

OLD_NAME = "01700000000000000000-4242"
PROXY = "127.0.0.1"  # trusted by default: a local proxy in front
UA = "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 Mobile Safari/537.36"


def old_line(link: int, client: str, *, hints: str | None = "") -> str:
    """A click as the versions before the click log spooled it."""
    fields = [link, 1, 1_700_000_000.5, PROXY, UA, "https://t.co/x", "id-ID", client, "", "",
              "qr"] + ([hints] if hints is not None else [])  # fmt: skip
    return json.dumps(fields) + "\n"


def intake() -> ClientIntake:
    found = ClientIntake(Settings(ignore_ips=["198.51.100.0/24"]))
    found.use_secret("s" * 40)
    return found


def logged(spool: Path) -> list:
    async def no_position(_key: str) -> int:
        return 0

    reader = LogReader(str(spool))
    clicks = run(reader.next_batch(100, no_position)).clicks
    reader.release()
    return clicks


def test_old_lines_become_what_the_redirect_logs_now(tmp_path: Path) -> None:
    old = tmp_path / f"{OLD_NAME}.jsonl"
    old.write_text(
        old_line(1, "203.0.113.7")
        + old_line(2, "203.0.113.8", hints=None)  # logged before client hints were kept
        + old_line(3, "198.51.100.9")  # an ignored address: not recorded
        + '[1, 1, "cut\n'
        + old_line(4, "203.0.113.7", hints="sec-ch-ua-model: SM-S918B")
    )
    assert convert_old_spool(str(tmp_path), intake()) == 3
    assert not old.exists()
    assert [p.name for p in segment_paths(tmp_path)] == [f"{OLD_NAME}-jsonl.seg"]
    one, two, four = logged(tmp_path)
    assert [c.link_id for c in (one, two, four)] == [1, 2, 4]
    # The client the proxy named, as the store keeps it (its /24 by default), and the keyed
    # digest of the whole address: the same address gives the same digest, as in the redirect.
    assert (one.ip, one.user_agent, one.trigger, one.ts) == ("203.0.113.0", UA, "qr", 1.7e9 + 0.5)
    assert one.visitor_key == four.visitor_key != two.visitor_key
    assert one.visitor_key == intake().client(PROXY, "203.0.113.7", "", "")[1]
    assert (two.client_hints, four.client_hints) == ("", "sec-ch-ua-model: SM-S918B")
    assert convert_old_spool(str(tmp_path), intake()) == 0  # once


def test_a_conversion_cut_short_is_finished_or_done_again_never_twice(tmp_path: Path) -> None:
    # Cut after the segment was written and the old file removed: only the rename is left.
    (tmp_path / f"{OLD_NAME}-jsonl.new").write_text(
        json.dumps([1, 1, 1.7e9, "203.0.113.7", "k", UA, "", "", "link", ""]) + "\n"
    )
    # Cut while writing another's segment: its old file is still there, and is done again.
    (tmp_path / "01700000000000000001-4243.jsonl").write_text(old_line(2, "203.0.113.8"))
    (tmp_path / "01700000000000000001-4243-jsonl.new").write_text('[2, 1, 1.7e9, "203.')
    assert convert_old_spool(str(tmp_path), intake()) == 1
    assert [c.link_id for c in logged(tmp_path)] == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{OLD_NAME}-jsonl.seg",
        "01700000000000000001-4243-jsonl.seg",
    ]


def test_a_file_an_older_process_still_appends_to_is_left_alone(tmp_path: Path) -> None:
    old = tmp_path / f"{OLD_NAME}.jsonl"
    old.write_text(old_line(1, "203.0.113.7"))
    with old.open("ab") as appending:
        fcntl.flock(appending, fcntl.LOCK_EX)
        assert convert_old_spool(str(tmp_path), intake()) == 0
    assert old.exists() and segment_paths(tmp_path) == []
    assert convert_old_spool(str(tmp_path), intake()) == 1

"""Two serving "nodes" and two `tautan writer` processes on one machine, sharing one
database and one Redis Stream, as N machines would: a writer killed with SIGKILL and a node
stopped with SIGTERM mid-run lose no click answered with a 302, and write none twice; with
the clicks in the SQL database and in ClickHouse (embedded: the writers share its folder
through the process that owns it)."""

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.clickhouse.client import chdb_folder
from app.clickhouse.embedded import owner_of
from tests.support import clickhouse, traffic
from tests.support.clickhouse import fresh_clickhouse
from tests.support.server import TAUTAN, serving
from tests.support.stream import entries_written, stream_state, stream_url
from tests.support.traffic import Traffic, create_link, wait_until


def lock_owner(url: str) -> int | None:
    return owner_of(Path(chdb_folder(url)))


def writer_pids(spool: Path) -> list[int]:
    return sorted(int(p.stem) for p in (spool / "writers").glob("*.json"))


@pytest.mark.parametrize("store", ["sql", "chdb"])
def test_nodes_and_writers_lose_and_repeat_no_click(
    database_url: str, tmp_path: Path, store: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("nodes on several machines share a database server: PostgreSQL")
    env = {"TAUTAN_CLICK_STREAM": stream_url(), "TAUTAN_WRITERS": "0",
           "TAUTAN_FLUSH_BATCH": "100", "TAUTAN_FLUSH_INTERVAL_MS": "50"}  # fmt: skip
    stored: Callable[[str], list[str]] = traffic.referrers
    where = database_url
    if store == "chdb":
        where = env["TAUTAN_CLICKHOUSE_URL"] = fresh_clickhouse("chdb", tmp_path)
        stored = clickhouse.referrers
    writers = []
    with (
        serving(database_url, tmp_path / "node1", env=env) as (_, first),
        serving(database_url, tmp_path / "node2", env=env) as (node2, second),
    ):
        for n in (1, 2):
            spool = tmp_path / f"writer{n}"
            environment = {**os.environ, **env, "TAUTAN_DATABASE_URL": database_url,
                           "TAUTAN_SPOOL_DIR": str(spool)}  # fmt: skip
            writers.append((subprocess.Popen([TAUTAN, "writer"], env=environment), spool))
        try:
            assert wait_until(lambda: all(writer_pids(spool) for _, spool in writers), 30)
            create_link(first, "n")
            one, two = Traffic(first, "n", 3, "one"), Traffic(second, "n", 3, "two")
            time.sleep(1.5)
            # A writer machine dies: its supervisor and its writer process, at once. With
            # embedded ClickHouse, the one that owns its folder (the other then takes over).
            pids = [writer_pids(spool)[0] for _, spool in writers]
            killed = 0
            if store == "chdb":
                # A writer process takes the folder at its first batch, once it has loaded
                # its parsers (seconds on a busy machine); `tautan writer` let go of it
                # after migrating.
                assert wait_until(lambda: lock_owner(where) in pids, 30), lock_owner(where)
                killed = pids.index(lock_owner(where))
            supervisor, spool = writers[killed]
            pid = pids[killed]
            supervisor.kill()
            os.kill(pid, signal.SIGKILL)
            time.sleep(1.5)
            node2.terminate()  # a node taken out of the balancer, stopped as an operator would
            assert node2.wait(timeout=30) == 0
            time.sleep(1)
            one.stop()
            two.stop()
            answered = one.answered | two.answered
            # Once all are in, and a second more: anything written twice would be by then.
            assert wait_until(lambda: len(stored(where)) >= len(answered)), (
                f"{len(stored(where))} of {len(answered)} answered clicks written; "
                f"stream: {stream_state(env['TAUTAN_CLICK_STREAM'])}; "
                f"node 2 logged: {node2.stdout.read()[-3000:]}"  # type: ignore[union-attr]
            )
            time.sleep(1)
            written = stored(where)
        finally:
            for process, _ in writers:
                if process.poll() is None:
                    process.terminate()
                process.wait(timeout=30)
    assert len(one.answered) > 100 and len(two.answered) > 100
    assert len(written) == len(set(written)), "a click was written twice"
    assert answered == set(written)
    assert one.unanswered == 0
    assert entries_written(env["TAUTAN_CLICK_STREAM"]) > 0

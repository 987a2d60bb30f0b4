"""The click log and its writer processes under a real `tautan serve`: figures across
processes, and a kill -9 of a writer mid-batch or of a serving worker mid-append loses no
click the server answered and writes none twice, with the local log alone and with the
Redis Stream (TAUTAN_CLICK_STREAM)."""

import os
import signal
import time
from pathlib import Path

import httpx2
import pytest

from tests.support.server import UAS, serving
from tests.support.stream import entries_written, stream_url
from tests.support.traffic import HUMAN, Traffic, create_link, wait_until


@pytest.fixture(params=["segments", "stream"])
def log_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of a server whose click log is the local segments, or the stream."""
    return {"TAUTAN_CLICK_STREAM": stream_url()} if request.param == "stream" else {}


def metric_values(base: str) -> dict[str, float]:
    text = httpx2.get(f"{base}/metrics").text
    return {
        name: float(value)
        for name, value in (line.rsplit(" ", 1) for line in text.splitlines() if line[:1] != "#")
    }


def writer_pids(tmp_path: Path) -> list[int]:
    return sorted(int(p.stem) for p in (tmp_path / "spool" / "writers").glob("*.json"))


def test_metrics_add_up_what_every_writer_process_did(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path, env={"TAUTAN_WRITERS": "2"}) as (_, base):
        assert wait_until(lambda: len(writer_pids(tmp_path)) == 2)
        create_link(base, "m")
        for agent in (HUMAN, HUMAN, UAS[3]):  # two people and a preview fetcher
            assert httpx2.get(f"{base}/m", headers={"User-Agent": agent}).status_code == 302
        assert wait_until(lambda: metric_values(base)["tautan_clicks_written_total"] == 3)
        values = metric_values(base)
        ready = httpx2.get(f"{base}/readyz").json()
    assert values["tautan_writers"] == 2
    assert values["tautan_clicks_logged_total"] == values["tautan_redirects_total"] == 3
    assert values["tautan_bot_clicks_total"] == 1
    per_process = [v for k, v in values.items() if k.startswith("tautan_writer_clicks_written")]
    assert len(per_process) == 2 and sum(per_process) == 3
    assert values["tautan_flush_seconds_count"] >= 1
    assert values["tautan_queue_depth"] == values["tautan_click_log_lag_seconds"] == 0
    assert values["tautan_clicks_dropped_total"] == 0
    assert (ready["queue_depth"], ready["lag_seconds"]) == (0, 0)


def test_a_writer_killed_mid_batch_loses_no_click_and_writes_none_twice(
    database_url: str, tmp_path: Path, log_env: dict[str, str]
) -> None:
    # Small batches and a short interval: a kill lands between a batch's reads and its
    # commit far more often than not.
    env = {"TAUTAN_FLUSH_BATCH": "50", "TAUTAN_FLUSH_INTERVAL_MS": "50", **log_env}
    with serving(database_url, tmp_path, env=env) as (_, base):
        create_link(base, "k")
        assert wait_until(lambda: len(writer_pids(tmp_path)) == 1)
        traffic = Traffic(base, "k")
        killed = []
        # Twice: a writer dying within seconds of its start is restarted after a pause
        # doubling each time (1 s, 2 s …), which a third and fourth kill would only wait out.
        for _ in range(2):
            time.sleep(0.7)
            [pid] = writer_pids(tmp_path)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            # Restarted by `tautan serve` (its figures published under a new pid).
            assert wait_until(lambda p=pid: writer_pids(tmp_path) not in ([], [p]), 20)
        written = traffic.written(database_url)
        answered = traffic.answered
        assert len(answered) > 100 and traffic.unanswered == 0
    assert len(written) == len(set(written)), "a click was written twice"
    assert set(written) == answered
    assert_through_the_stream(log_env)


def test_a_serving_worker_killed_mid_append_loses_no_answered_click(
    database_url: str, tmp_path: Path, log_env: dict[str, str]
) -> None:
    with serving(database_url, tmp_path, "--workers", "2", env=log_env) as (process, base):
        create_link(base, "w")
        traffic = Traffic(base, "w", threads=6)
        time.sleep(1.5)
        workers = serving_workers(process.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)  # uvicorn starts another in its place
        time.sleep(1.5)
        written = traffic.written(database_url)
        answered = traffic.answered
    assert len(written) == len(set(written)), "a click was written twice"
    assert answered <= set(written), "an answered click was lost"
    # Logged but never answered: a request the kill cut off after its click was logged.
    assert len(set(written) - answered) <= traffic.unanswered
    assert_through_the_stream(log_env)


def assert_through_the_stream(log_env: dict[str, str]) -> None:
    if stream := log_env.get("TAUTAN_CLICK_STREAM"):
        assert entries_written(stream) > 0


def serving_workers(server: int) -> list[int]:
    """The uvicorn worker processes of `tautan serve` (started by multiprocessing)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == server and b"spawn_main" in command:  # not a writer, nor the tracker
            found.append(int(entry.name))
    return sorted(found)

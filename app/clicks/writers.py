"""Writer processes. `tautan serve` starts TAUTAN_WRITERS of them beside its serving workers,
and `tautan writer` runs them alone. Each is restarted when it dies; they stop last, once
the serving processes no longer append, and write what the log holds in the time they have.

Each writer publishes its figures (WriterStats) to `writers/<pid>.json` under the spool
folder, which every serving process's /metrics reads."""

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict

import uvloop

from app.clicks.log import LogSize, stats_path
from app.config import Settings, get_settings

log = logging.getLogger(__name__)
PUBLISH_EVERY_S = 1.0
WATCH_EVERY_S = 0.5
# A writer that dies within this long of its start is restarted after a pause (doubling up
# to RESTART_PAUSE_MAX_S), so a writer that cannot start does not spin.
QUICK_DEATH_S = 5.0
RESTART_PAUSE_MAX_S = 30.0
STARTUP_S = 10.0  # how long stop() waits for a writer that is still starting
# How long stop() waits for a writer to exit: its drain (writer.DRAIN_S, 8 s), its last
# offsets forgotten (log.FORGET_S and stream.FORGET_S, 1 s), and a margin.
STOP_S = 10.0


async def run_writer(settings: Settings) -> None:
    """One writer process's work, until SIGTERM or SIGINT (or its parent is gone). Its
    figures are published once it handles both: the supervisor signals it no earlier."""
    # Imported here: the supervisor below runs in the serving process, which has no use
    # for the parsers (tens of MB).
    from app.clickhouse.client import connect
    from app.clicks.intake import ClientIntake
    from app.clicks.old_spool import convert_old_spool, old_spool_files
    from app.clicks.writer import ClickWriter
    from app.core.database import create_engine, create_sessionmaker
    from app.secret_key import SecretKey

    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    secret_key = SecretKey(sessionmaker, settings.secret_key)
    if old_spool_files(settings.spool_dir):  # left by a version before the click log
        intake = ClientIntake(settings)
        await intake.key_with(secret_key)
        convert_old_spool(settings.spool_dir, intake)
    clickhouse = connect(settings.clickhouse_url) if settings.clickhouse_url else None
    writer = ClickWriter.for_settings(settings, sessionmaker, secret_key, clickhouse)
    enricher = writer.enricher
    enricher.warm()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, writer.stop)
    path = stats_path(settings.spool_dir, os.getpid())
    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def publish() -> None:
        figures = {"pid": os.getpid(), **asdict(writer.stats)}
        figures["device_fallbacks"] = enricher.device_fallbacks
        # Best effort: a full disk must not stop the one process that frees it.
        with contextlib.suppress(OSError):
            path.with_suffix(".tmp").write_text(json.dumps(figures))
            path.with_suffix(".tmp").replace(path)

    async def publish_and_watch(parent: int) -> None:
        while True:
            await asyncio.sleep(PUBLISH_EVERY_S)
            publish()
            if os.getppid() != parent:  # the supervisor died (kill -9): stop as it would
                log.warning("the process that started this writer is gone; stopping")
                writer.stop()

    publish()
    publisher = asyncio.create_task(publish_and_watch(os.getppid()))
    try:
        await writer.run()
    finally:
        publisher.cancel()
        publish()
        await engine.dispose()
        if clickhouse is not None:
            await clickhouse.close()
    if settings.click_stream:
        return
    if left := LogSize(settings.spool_dir).measure()[0]:  # a segment written in part counts whole
        log.warning("stopping with segments of %d clicks in the click log: the next start "
                    "writes what is left of them", left)  # fmt: skip


def main() -> None:
    """`python -m app.clicks.writers`: one writer process (started by Writers below)."""
    os.umask(0o077)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s:     writer %(process)d: %(message)s"
    )
    # uvloop, as the serving processes: its thread hand-offs (aiosqlite's, ClickHouse's)
    # cost less, ~11 % more clicks a second (bench/writer_bench.py, A B A B).
    uvloop.run(run_writer(get_settings()))


class Writers:
    """Starts `count` writer processes, restarts any that dies, and stops them all."""

    def __init__(self, count: int, spool_dir: str) -> None:
        self.count, self.spool_dir = count, spool_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self._started: list[float] = []  # when each process was started
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> None:
        with self._lock:
            self.processes = [_spawn() for _ in range(self.count)]
        self._started = [time.monotonic()] * self.count
        threading.Thread(target=self._watch, name="writers", daemon=True).start()

    def _watch(self) -> None:
        pauses = [0.0] * self.count
        while not self._stopping.wait(WATCH_EVERY_S):
            with self._lock:
                for index, process in enumerate(self.processes):
                    if self._stopping.is_set() or process.poll() is None:
                        continue
                    try:
                        self._restart(index, process, pauses)
                    except Exception:  # the next turn tries again (a fork refused, say)
                        log.exception("restarting writer process %d failed", process.pid)

    def _restart(self, index: int, process: subprocess.Popen[bytes], pauses: list[float]) -> None:
        lived = time.monotonic() - self._started[index]
        pauses[index] = (
            min(max(pauses[index] * 2, 1.0), RESTART_PAUSE_MAX_S) if lived < QUICK_DEATH_S else 0.0
        )
        log.error(
            "writer process %d exited (%s); restarting it in %.0fs",
            process.pid, process.returncode, pauses[index],
        )  # fmt: skip
        stats_path(self.spool_dir, process.pid).unlink(missing_ok=True)
        if not self._stopping.wait(pauses[index]):
            self.processes[index] = _spawn()
            self._started[index] = time.monotonic()

    def stop(self) -> None:
        """SIGTERM to every writer, then wait for them (they write what they can first)."""
        self._stopping.set()
        with self._lock:
            # One still starting (Python and its imports, before it handles SIGTERM) would
            # die of the signal with the log unwritten: it is given the time to start.
            started_by = time.monotonic() + STARTUP_S
            for process in self.processes:
                while (
                    not stats_path(self.spool_dir, process.pid).exists()
                    and process.poll() is None
                    and time.monotonic() < started_by
                ):
                    time.sleep(0.05)
            for process in self.processes:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_S
            for process in self.processes:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.error("writer process %d did not stop; killed", process.pid)
                    process.kill()
                    process.wait()
                stats_path(self.spool_dir, process.pid).unlink(missing_ok=True)


def _spawn() -> subprocess.Popen[bytes]:
    # A session of its own: a Ctrl-C at the terminal reaches the serving processes only,
    # and the writers are stopped after them, by stop().
    return subprocess.Popen([sys.executable, "-m", "app.clicks.writers"], start_new_session=True)


if __name__ == "__main__":
    main()

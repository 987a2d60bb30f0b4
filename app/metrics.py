"""Metrics in the Prometheus text format. The hot path only bumps plain integers; they are
turned into metric families when /metrics is scraped, together with the click log's state
and the figures each writer process publishes (app/clicks/writers.py)."""

from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from app.clicks.log import ClickLog, LogSize, oldest_click_age, read_stats
from app.clicks.stream import MAX_ENTRIES, StreamForwarder

# The figures of WriterStats (and the enricher's), as metrics summed over writer processes
# and per process (label `process`).
WRITER_COUNTERS = {
    "clicks_written": "Click rows written to the database",
    "bot_clicks": "Bot and preview clicks written",
    "clicks_rejected": "Clicks the database refused as data",
    "writer_errors": "Batches whose write failed (their clicks stay in the log, written later)",
    "device_fallbacks": "New User-Agents given the quick device answer: the batch's time for "
    "the reference device database was spent",
}


class Metrics:
    def __init__(
        self, click_log: ClickLog, spool_dir: str, forwarder: StreamForwarder | None = None
    ) -> None:
        self.click_log = click_log
        self.forwarder = forwarder
        self.log_size = LogSize(spool_dir)
        self.spool_dir = spool_dir
        self.redirects = 0
        self.preview_pages = 0
        self.hint_restarts = 0
        self.registry = CollectorRegistry()
        self.registry.register(self)  # type: ignore[arg-type]

    def collect(self) -> Iterator[Metric]:
        counters = {
            "redirects": (self.redirects, "Redirects served"),
            "preview_pages": (
                self.preview_pages,
                "Link-preview pages (Open Graph) served to preview fetchers instead of a redirect",
            ),
            "hint_restarts": (
                self.hint_restarts,
                "Redirects not recorded as clicks: Chromium asked again at once with its "
                "client hints (TAUTAN_CLIENT_HINTS=critical), and that request is the click",
            ),
            "clicks_logged": (self.click_log.appended, "Clicks this process appended to the log"),
            "clicks_dropped": (
                self.click_log.dropped,
                "Clicks this process could not log: the log was at its cap "
                "(TAUTAN_SPOOL_MAX_MB) or the disk refused them. Alert on any.",
            ),
        }
        for name, (value, help_text) in counters.items():
            yield CounterMetricFamily(f"tautan_{name}", help_text, value=value)
        clicks, size = self.log_size.measure()
        yield GaugeMetricFamily(
            "tautan_queue_depth",
            "Clicks in the click log not yet written (a segment written in part counts whole)",
            clicks,
        )
        yield GaugeMetricFamily(
            "tautan_spool_size_bytes", "Bytes in the click log (TAUTAN_SPOOL_DIR)", size
        )
        yield GaugeMetricFamily(
            "tautan_click_log_lag_seconds",
            "Age of the oldest click not yet written: how far behind the dashboards are",
            self.lag_seconds(),
        )
        if self.forwarder:
            yield from self._stream(self.forwarder)
        writers = read_stats(self.spool_dir)
        yield GaugeMetricFamily("tautan_writers", "Writer processes running", len(writers))
        for name, help_text in WRITER_COUNTERS.items():
            total = CounterMetricFamily(f"tautan_{name}", help_text)
            total.add_metric([], sum(w.get(name, 0) for w in writers))
            yield total
            each = CounterMetricFamily(
                f"tautan_writer_{name}", f"{help_text}, per writer process", labels=["process"]
            )
            for figures in writers:
                each.add_metric([str(figures["pid"])], figures.get(name, 0))
            yield each
        yield SummaryMetricFamily(
            "tautan_flush_seconds",
            "Time writers took to enrich and write a batch of clicks",
            count_value=sum(w.get("batches", 0) for w in writers),
            sum_value=sum(w.get("busy_seconds", 0.0) for w in writers),
        )

    def lag_seconds(self) -> float:
        """Age of the oldest click not yet written: in this machine's local log, or in the
        click stream (as last measured)."""
        local = oldest_click_age(Path(self.spool_dir))
        return max(local, self.forwarder.oldest_s) if self.forwarder else local

    def _stream(self, forwarder: StreamForwarder) -> Iterator[Metric]:
        """The click stream (TAUTAN_CLICK_STREAM), as this process's forwarder last saw it."""
        yield CounterMetricFamily(
            "tautan_clicks_forwarded",
            "Clicks this process forwarded from its local log to the click stream",
            value=forwarder.forwarded,
        )
        yield CounterMetricFamily(
            "tautan_click_stream_failures",
            "Forwarding rounds the click stream did not answer (clicks wait in the local log)",
            value=forwarder.failures,
        )
        yield GaugeMetricFamily(
            "tautan_click_stream_entries",
            "Entries in the click stream not yet written (forwarding holds back at "
            f"{MAX_ENTRIES}: alert well before)",
            forwarder.entries,
        )
        yield GaugeMetricFamily(
            "tautan_click_stream_lag_seconds",
            "Age of the oldest entry in the click stream not yet written",
            forwarder.oldest_s,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

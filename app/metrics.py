"""Process metrics in the Prometheus text format. The hot path only bumps plain integers;
they are turned into metric families when /metrics is scraped."""

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


class Metrics:
    def __init__(self) -> None:
        self.redirects = 0
        self.preview_pages = 0
        self.hint_restarts = 0
        self.clicks_enqueued = 0
        self.clicks_written = 0
        self.clicks_spooled = 0
        self.bot_clicks = 0
        self.clicks_rejected = 0
        self.writer_errors = 0
        self.queue_depth: Callable[[], int] = lambda: 0
        self.spool_size: Callable[[], int] = lambda: 0
        self.device_fallbacks: Callable[[], int] = lambda: 0
        self.registry = CollectorRegistry()
        self.registry.register(self)  # type: ignore[arg-type]
        self.flush_seconds = Histogram(
            "tautan_flush_seconds",
            "Time to write one batch of clicks",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

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
            "clicks_enqueued": (self.clicks_enqueued, "Clicks handed to the writer"),
            "clicks_written": (self.clicks_written, "Click rows written to the database"),
            "clicks_spooled": (self.clicks_spooled, "Clicks written to the spool"),
            "bot_clicks": (self.bot_clicks, "Bot and preview clicks written"),
            "clicks_rejected": (self.clicks_rejected, "Clicks the database refused as data"),
            "writer_errors": (self.writer_errors, "Failed click writes"),
        }
        for name, (value, help_text) in counters.items():
            yield CounterMetricFamily(f"tautan_{name}", help_text, value=value)
        yield CounterMetricFamily(
            "tautan_device_fallbacks",
            "New User-Agents given the quick device answer: the batch's time for the reference "
            "device database was spent",
            value=self.device_fallbacks(),
        )
        yield GaugeMetricFamily(
            "tautan_queue_depth", "Clicks waiting in memory", self.queue_depth()
        )
        yield GaugeMetricFamily(
            "tautan_spool_size",
            "Clicks waiting in the spool (a count of clicks, not bytes)",
            self.spool_size(),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

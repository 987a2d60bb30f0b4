"""The clicks-over-time chart and the world map, drawn on the server as SVG by pygal (and
pygal's world map plugin). The page shows them as <img>: an image runs no script and its
inline style is its own, so the page's strict CSP stays as it is. PNG copies are drawn
from the same SVG by CairoSVG."""

import sys
from datetime import datetime
from typing import Any

import pygal
from pygal.style import Style
from pygal_maps_world.i18n import COUNTRIES
from pygal_maps_world.maps import World

# pygal adds an old-style import hook for its map plugins, unused here; on Python 3.11 any
# import that finds no module then warns through it, so it is taken out again.
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]

STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#334155",
    foreground_strong="#0f172a",
    foreground_subtle="#e2e8f0",
    colors=("#64748b", "#f59e0b", "#2563eb"),  # previous grey, unique visitors amber, clicks blue
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
)
LABELS = {"hour": "%d %b %H:%M", "day": "%d %b", "week": "%d %b", "month": "%b %Y"}
MAX_LABELS = 12


def clicks_chart(
    buckets: list[dict[str, Any]],
    interval: str,
    previous: list[dict[str, Any]] | None = None,
    *,
    phone: bool = False,
) -> bytes:
    """Clicks and unique visitors per bucket (as stats.service.timeseries gives them), and
    the clicks of the period before, bucket for bucket, if given. `phone`: drawn for a
    narrow screen (fewer, larger labels, the legend stacked), not scaled down to unreadable."""
    labels = MAX_LABELS // 3 if phone else MAX_LABELS
    chart = pygal.Line(
        style=STYLE,
        js=[],  # pygal's default is a tooltip script from another origin
        width=420 if phone else 960,
        height=340 if phone else 320,
        fill=True,
        show_dots=len(buckets) <= 60,
        dots_size=2.5,
        legend_at_bottom=True,
        legend_at_bottom_columns=1 if phone else 3,
        show_minor_x_labels=False,
        x_labels_major_every=max(1, len(buckets) // labels),
        truncate_label=-1,
        min_scale=2,
        max_scale=6,
        include_x_axis=True,
        margin=8,
    )
    chart.x_labels = [
        datetime.fromisoformat(b["start"]).strftime(LABELS[interval]) for b in buckets
    ]
    chart.add(
        "Clicks, previous period",
        [b["clicks"] for b in previous or []],
        fill=False,
        show_dots=False,
        stroke_style={"dasharray": "6, 4", "width": 1.5},
    )
    # Clicks last, so drawn on top: unique visitors never exceed clicks, and where they are
    # equal, clicks drawn first would be hidden under them.
    chart.add("Unique visitors", [b["unique_visitors"] for b in buckets])
    chart.add("Clicks", [b["clicks"] for b in buckets])
    return chart.render()


def world_map(countries: list[dict[str, Any]]) -> bytes:
    """Clicks per country (rows of the `country` breakdown, ISO codes) on a world map."""
    chart = World(
        style=Style(
            background="transparent",
            plot_background="transparent",
            foreground="#334155",
            colors=("#2563eb",),
            font_family=STYLE.font_family,
        ),
        js=[],
        width=960,
        height=480,
        show_legend=False,
        margin=0,
    )
    chart.add(
        "Clicks",
        {row["value"].lower(): row["clicks"] for row in countries if len(row["value"]) == 2},
    )
    return chart.render()


def as_png(svg: bytes) -> bytes:
    import cairosvg  # loads the cairo library: only when a PNG is asked for

    return cairosvg.svg2png(bytestring=svg, background_color="white")


def country_name(code: str) -> str:
    """A country's English name from its ISO code (the map's own names), else the code."""
    return COUNTRIES.get(code.lower(), code) if len(code) == 2 else code

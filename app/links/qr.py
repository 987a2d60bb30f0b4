"""QR codes of short links. The code carries `?qr=1`, so scans count as `trigger=qr`."""

import io
import re

import segno

COLOR = re.compile(r"^#?(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


def color(value: str) -> str | None:
    """A hex colour as segno takes it, or None for `transparent`; ValueError otherwise."""
    if value == "transparent":
        return None
    if not COLOR.match(value):
        raise ValueError(f"'{value}' is not a hex colour (like 1a2b3c) or 'transparent'")
    return "#" + value.removeprefix("#")


def qr_code(short_url: str, *, kind: str, size: int, margin: int, dark: str, light: str) -> bytes:
    """The QR code of `short_url`, about `size` pixels wide (whole pixels per module)."""
    code = segno.make(f"{short_url}?qr=1", error="m")
    modules = code.symbol_size(scale=1, border=margin)[0]
    out = io.BytesIO()
    code.save(out, kind=kind, scale=max(1, size // modules), border=margin,
              dark=color(dark), light=color(light))  # fmt: skip
    return out.getvalue()

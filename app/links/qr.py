"""QR codes of short links. The code carries `?qr=1`, so scans count as `trigger=qr`.

`size` is the whole image, quiet zone included: exactly `size` by `size` pixels. A PNG
gives every module the same whole number of pixels (sharp edges for scanners and
printers); the pixels left over widen the quiet zone, half on each side. An SVG scales its
modules to fill the size exactly. Below one pixel per module (quiet zone included) there
is no image: SizeTooSmall, with the minimum."""

import io
import re
from collections.abc import Iterable

import png
import segno

COLOR = re.compile(r"^#?(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


class SizeTooSmall(ValueError):
    def __init__(self, size: int, minimum: int, margin: int) -> None:
        super().__init__(
            f"size {size} is too small for this QR code: it is {minimum} modules wide with "
            f"a margin of {margin}, so size must be at least {minimum} (pixels)"
        )
        self.minimum = minimum


def color(value: str) -> str | None:
    """A hex colour as segno takes it, or None for `transparent`; ValueError otherwise."""
    if value == "transparent":
        return None
    if not COLOR.match(value):
        raise ValueError(f"'{value}' is not a hex colour (like 1a2b3c) or 'transparent'")
    return "#" + value.removeprefix("#")


def qr_code(short_url: str, *, kind: str, size: int, margin: int, dark: str, light: str) -> bytes:
    """The QR code of `short_url` as an SVG or PNG image of exactly `size` x `size` pixels,
    `margin` modules of quiet zone included."""
    dark_color, light_color = color(dark), color(light)
    code = segno.make(f"{short_url}?qr=1", error="m")
    modules = code.symbol_size(scale=1, border=margin)[0]
    if size < modules:
        raise SizeTooSmall(size, modules, margin)
    if kind == "png":
        return _png(code, size, margin, dark_color, light_color)
    out = io.BytesIO()
    # No width and height from segno (a viewBox in modules instead): they are set to `size`.
    code.save(out, kind="svg", border=margin, dark=dark_color, light=light_color, omitsize=True)
    return out.getvalue().replace(b"<svg ", f'<svg width="{size}" height="{size}" '.encode(), 1)


def _rgba(value: str | None) -> tuple[int, int, int, int]:
    """(r, g, b, alpha) of `#rgb`, `#rrggbb` or `#rrggbbaa`; None is transparent."""
    if value is None:
        return (255, 255, 255, 0)
    digits = value.removeprefix("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    r, g, b, *a = bytes.fromhex(digits)
    return (r, g, b, a[0] if a else 255)


def _png(code: segno.QRCode, size: int, margin: int, dark: str | None, light: str | None) -> bytes:
    """A 1-bit PNG of `size` x `size` pixels: whole pixels per module, the pixels left over
    added to the quiet zone. (segno scales PNGs by whole modules only.)"""
    rows = list(code.matrix_iter(scale=1, border=margin))
    scale, spare = divmod(size, len(rows))
    before, after = spare // 2, spare - spare // 2

    def line(row: Iterable[int]) -> list[int]:
        return [0] * before + [1 if v else 0 for v in row for _ in range(scale)] + [0] * after

    blank = [0] * size
    pixels = [blank] * before + [line(row) for row in rows for _ in range(scale)] + [blank] * after
    palette = [_rgba(light), _rgba(dark)]  # index 0 light, 1 dark
    if all(alpha == 255 for *_, alpha in palette):
        palette = [rgba[:3] for rgba in palette]  # no transparency chunk where none is needed
    out = io.BytesIO()
    png.Writer(size, size, palette=palette, bitdepth=1).write(out, pixels)
    return out.getvalue()

"""CSV cells that spreadsheets open as text. A cell starting with = + - @ (or a tab or a
carriage return) is run as a formula by Excel and its kin (CSV injection), and such text
comes from visitors' headers and from other workspaces' links: it gets a leading quote,
which spreadsheets hide and `plain` takes off again. Text that starts with a quote itself
gets one more, so that `plain` gives back any text exactly as it was. Booleans are written
`true` and `false` in every CSV (not Python's `True`/`False`)."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def as_text(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, QUOTE)):
        return QUOTE + value
    return value


def plain(cell: str) -> str:
    """A cell written by `as_text`, as it was; other text (`'Tis`) is left alone."""
    if cell.startswith(QUOTE) and cell[1:].startswith((*FORMULA_STARTS, QUOTE)):
        return cell[1:]
    return cell

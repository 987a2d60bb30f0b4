"""The visitor's language, as a click records it and a link's rules match it."""


def primary_language(accept_language: str) -> str | None:
    """`id` for `id-ID,id;q=0.9,en;q=0.8`; None when absent or not a language tag."""
    tag = accept_language.split(",", 1)[0].split(";", 1)[0].strip()
    primary = tag.split("-", 1)[0].lower()
    # ISO 639 primary subtags are 2 or 3 letters; anything else is noise.
    return primary if primary.isascii() and primary.isalpha() and 2 <= len(primary) <= 3 else None

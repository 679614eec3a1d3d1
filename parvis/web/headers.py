"""Parsing of the HTTP request headers that list weighted choices (Accept-Language, Accept-Encoding)."""

from __future__ import annotations


def weighted_items(header: str | None) -> list[tuple[str, float]]:
    """The items of a header such as ``fr-CH, fr;q=0.9, en;q=0.8``, in order, with their quality
    (1.0 when absent, 0.0 when unreadable)."""
    items: list[tuple[str, float]] = []
    for part in (header or "").split(","):
        name, *parameters = part.split(";")
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name.strip():
            items.append((name.strip(), quality))
    return items

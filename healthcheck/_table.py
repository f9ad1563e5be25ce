"""Plain-text tables for terminals, with optional ANSI colour per cell."""

from __future__ import annotations

import os
import sys

COLOURS = {"OK": "32", "PROBLEM": "31", "UNKNOWN": "33", "SKIPPED": "2"}


def use_colour(mode: str = "auto", stream=None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set or TERM is dumb."""
    if mode != "auto":
        return mode == "always"
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def paint(text: str, word: str, colour: bool) -> str:
    code = COLOURS.get(word)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def render_table(
    header: list[str], rows: list[list[str]], colour_column: int | None = None, colour: bool = False
) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded.

    Every cell is made one line of at most :data:`~healthcheck.sdk.text.LOG_LIMIT` bytes first: a
    plugin's description or error must not break the table (or write escapes to a terminal).
    """
    from healthcheck.sdk.text import LOG_LIMIT, one_line

    rows = [[one_line(cell, LOG_LIMIT) for cell in row] for row in rows]
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for index, row in enumerate([header, *rows]):
        cells = []
        for i, cell in enumerate(row):
            padded = cell if i == len(row) - 1 else cell.ljust(widths[i])
            if index and i == colour_column:
                padded = paint(padded, cell, colour)
            cells.append(padded)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)

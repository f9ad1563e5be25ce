"""Reading event fields under several documented spellings, without trusting the JSON's shape."""

from __future__ import annotations


def pick(obj: dict, names: tuple[str, ...]):
    """The first of ``names`` present in ``obj`` (``None`` when none is)."""
    for name in names:
        if name in obj:
            return obj[name]
    return None


def text_of(value) -> str | None:
    """A string field, or the ``Name`` of an OpenAPI ``{"Code": n, "Name": "..."}`` object."""
    if isinstance(value, dict):
        value = value.get("Name", value.get("name"))
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None

"""Entry points of the ``healthcheck`` group, read straight from installed metadata.

importlib.metadata would do this, but importing it pulls in the email package and costs about
three times the interpreter's own start-up here. Entry points are plain files
(``*.dist-info/entry_points.txt``, INI syntax, see the PyPA entry-points specification), so the
one-shot path reads them directly. The full host uses the same index so both paths agree.
"""

from __future__ import annotations

import os
import sys

GROUP = "healthcheck"
BUILTIN_DISTRIBUTION = "node-healthcheck"


class EntryPoint:
    """One ``name = module[:attr]`` line of the group, with the distribution that declared it."""

    __slots__ = ("attr", "distribution", "module", "name", "version")

    def __init__(
        self, name: str, module: str, attr: str | None, distribution: str, version: str
    ) -> None:
        self.name = name
        self.module = module
        self.attr = attr
        self.distribution = distribution
        self.version = version

    @property
    def value(self) -> str:
        return self.module if self.attr is None else f"{self.module}:{self.attr}"

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION

    def load(self):
        """Import the module (and attribute) the entry point names."""
        import importlib

        obj = importlib.import_module(self.module)
        if self.attr:
            for part in self.attr.split("."):
                obj = getattr(obj, part)
        return obj

    def __repr__(self) -> str:
        return f"EntryPoint({self.name!r}, {self.value!r}, {self.distribution!r})"


def normalize(name: str) -> str:
    """PEP 503 name normalisation: lower case, runs of ``-_.`` become one dash."""
    out: list[str] = []
    dash = False
    for ch in name.lower():
        if ch in "-_.":
            dash = True
            continue
        if dash and out:
            out.append("-")
        dash = False
        out.append(ch)
    return "".join(out)


def _parse_group(text: str, group: str):
    """Yield ``(name, value)`` pairs of one section of an entry_points.txt."""
    in_group = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            in_group = line[1:].split("]", 1)[0].strip() == group
            continue
        if in_group and "=" in line:
            name, value = line.split("=", 1)
            yield name.strip(), value.strip()


def _split_value(value: str) -> tuple[str, str | None]:
    value = value.split("[", 1)[0].strip()  # extras are not used by this group
    module, _, attr = value.partition(":")
    return module.strip(), (attr.strip() or None)


def _dist_name_version(dirname: str) -> tuple[str, str]:
    stem = dirname.rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    return normalize(name), version


def read_index(paths=None, group: str = GROUP) -> list[EntryPoint]:
    """All entry points of ``group`` on ``paths`` (default ``sys.path``), first distribution wins.

    As importlib.metadata does, a distribution found again later on the path (an older copy
    shadowed by a newer one) is ignored.
    """
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for path in sys.path if paths is None else paths:
        try:
            entries = sorted(os.scandir(path or "."), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith((".dist-info", ".egg-info")):
                continue
            dist, version = _dist_name_version(entry.name)
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read(1 << 20)
            except OSError:
                continue
            for name, value in _parse_group(text, group):
                module, attr = _split_value(value)
                found.append(EntryPoint(name, module, attr, dist, version))
    return found

"""Small reads from /proc: the boot id and the conntrack counters (and, where /proc lacks them,
netlink). Documented in ``docs/sdk.md``.

Every function takes ``proc_root`` so tests and containers (a host /proc mounted elsewhere) can
point it at another tree.
"""

from __future__ import annotations

import os

from healthcheck.sdk.safefile import read_regular

__all__ = [
    "CountersMissing",
    "boot_id",
    "conntrack_stats_netlink",
    "conntrack_stats_proc",
    "conntrack_usage",
    "read_small",
]

_CONNTRACK_PAIRS = (
    ("sys/net/netfilter/nf_conntrack_count", "sys/net/netfilter/nf_conntrack_max"),
    ("sys/net/ipv4/netfilter/ip_conntrack_count", "sys/net/ipv4/netfilter/ip_conntrack_max"),
)
_CONNTRACK_STAT = "net/stat/nf_conntrack"
_MAX_READ = 1 << 20
# The kernel writes a UUID (36 characters and a newline); more than this is not a boot id.
_BOOT_ID_LIMIT = 64


class CountersMissing(LookupError):
    """The kernel does not expose the counters (module not loaded, or another proc root)."""


def read_small(path: str, limit: int = _MAX_READ) -> str:
    """Read at most ``limit`` bytes of a (proc) text file.

    Proc files are regular files; anything else at the name (a FIFO planted in a ``--proc-root``
    tree, a device) is an ``OSError`` at once, never a read that waits forever.
    """
    return read_regular(path, limit).decode("ascii", "replace")


def boot_id(proc_root: str = "/proc") -> str:
    """This boot's id (``<proc_root>/sys/kernel/random/boot_id``), stripped: a record made in
    another boot carries another id.

    At most 64 bytes are read. Raises ``OSError`` (one-line ``strerror``) when the file is
    missing, unreadable or not a regular file (a FIFO is refused at once, never waited on).
    """
    path = os.path.join(proc_root, "sys/kernel/random/boot_id")
    return read_small(path, _BOOT_ID_LIMIT).strip()


def _decimal(text: str) -> int:
    """ASCII decimal digits only: int() would also take "٣", "1_000" and " +3"."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    raise ValueError(f"invalid literal for int() with base 10: {text[:40]!r}")


def _hex(text: str) -> int:
    """ASCII hex digits only, as the kernel prints them (no "0x", no "_"), at most 64 bits: a
    longer cell would make a number too long to record as JSON (Python's 4300-digit limit)."""
    if 0 < len(text) <= 16 and text.isascii() and all(c in "0123456789abcdefABCDEF" for c in text):
        return int(text, 16)
    raise ValueError(f"invalid hex counter {text[:40]!r}")


def conntrack_usage(proc_root: str = "/proc") -> tuple[int, int]:
    """``(count, max)`` of the conntrack table, as NPD's network_problem.sh reads them.

    The nf_conntrack pair is used when both files exist, else the old ip_conntrack pair. Raises
    :class:`CountersMissing` when neither pair exists, ``OSError``/``ValueError`` when a read
    fails.
    """
    for count_name, max_name in _CONNTRACK_PAIRS:
        count_path = os.path.join(proc_root, count_name)
        max_path = os.path.join(proc_root, max_name)
        if os.path.exists(count_path) and os.path.exists(max_path):
            return _decimal(read_small(count_path)), _decimal(read_small(max_path))
    raise CountersMissing(f"no conntrack counters under {proc_root}/sys/net")


def conntrack_stats_proc(proc_root: str = "/proc") -> dict[str, int]:
    """Per-CPU conntrack statistics from ``<proc_root>/net/stat/nf_conntrack``, summed.

    The file is a header of column names and one row of hex numbers per CPU. ``entries`` is a
    global gauge repeated on every row, so it is taken once, not summed.
    """
    path = os.path.join(proc_root, _CONNTRACK_STAT)
    try:
        text = read_small(path)
    except FileNotFoundError:
        raise CountersMissing(f"{path} does not exist") from None
    lines = text.split("\n")
    header = lines[0].split()
    totals = dict.fromkeys(header, 0)
    rows = [line.split() for line in lines[1:] if line.strip()]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"{path}: row with {len(row)} columns, header has {len(header)}")
        for name, value in zip(header, row, strict=True):
            totals[name] += _hex(value)
    if "entries" in totals and rows:
        totals["entries"] = _hex(rows[0][header.index("entries")])
    return totals


def conntrack_stats_netlink() -> dict[str, int]:
    """The same statistics over netlink (pyroute2), for kernels without the /proc file.

    Reads the current network namespace, like ``conntrack -S``.
    """
    # pyroute2 (~30 ms) only for a kernel without the /proc file: never on a healthy one-shot.
    from pyroute2 import NFCTSocket  # type: ignore[import-untyped, unused-ignore]

    totals: dict[str, int] = {}
    with NFCTSocket() as sock:
        for msg in sock.stat():
            for name, value in msg.get("attrs", []):
                if name.startswith("CTA_STATS_") and isinstance(value, int):
                    key = name[len("CTA_STATS_") :].lower()
                    totals[key] = totals.get(key, 0) + value
    return totals

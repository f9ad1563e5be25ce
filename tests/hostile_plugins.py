"""Hostile third-party plugins, installed for a child process only (a ``*.dist-info`` on
PYTHONPATH, as pip would leave it), for the hardening tests of issue 11."""

from __future__ import annotations

import textwrap
from pathlib import Path

SIZE = 4 << 20

# One module, one checker per way a plugin can misbehave. It also prints on stdout at import.
HOSTILE_MODULE = f"""
import os
import sys
import threading

from healthcheck import Checker, Condition, Result, Status, hookimpl

print("hostile plugin: hello on stdout at import")
SIZE = {SIZE}


def huge(ctx):
    print("hostile plugin: hello on stdout from check()")
    os.write(1, b"hostile plugin: raw write to fd 1\\n")
    return Result.problem("\\U0001F4A9\\n\\x1b[31m\\"\\\\" * (SIZE // 8))


def mutated(ctx):
    result = Result.problem("mutated")
    result.status = 1  # a plain int, set after construction
    return result


def exits(ctx):
    sys.exit(3)


class Weird(BaseException):
    pass


def weird(ctx):
    raise Weird("a BaseException of its own\\nsecond line")


def bytes_message(ctx):
    result = Result.ok()
    result.message = b"bytes"
    return result


def hangs_applies():
    threading.Event().wait(3600)


def exits_applies():
    sys.exit(4)


def checker(name, check, **kwargs):
    return Checker(
        "hostile-" + name,
        description="hostile\\n" * 100,
        check=check,
        condition=Condition("Hostile" + name.title().replace("-", ""), "Bad", "Fine", "fine"),
        **kwargs,
    )


@hookimpl
def healthcheck_checkers():
    return [
        checker("huge", huge),
        checker("mutated", mutated),
        checker("exits", exits),
        checker("weird", weird),
        checker("bytes", bytes_message),
        checker("hang-applies", lambda ctx: Result.ok("ran"), applies=hangs_applies),
        checker("exit-applies", lambda ctx: Result.ok("ran"), applies=exits_applies),
    ]
"""


def install(site: Path, module: str = HOSTILE_MODULE, name: str = "hostile") -> dict[str, str]:
    """Install the hostile plugin under ``site``; returns the env a child process needs."""
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{name}_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[healthcheck]\n{name} = {name}_mod\n")
    (site / f"{name}_mod.py").write_text(textwrap.dedent(module))
    return {"PYTHONPATH": str(site)}

"""node-healthcheck: node health checks for Kubernetes.

This module is the whole public API a plugin may import. It is deliberately cheap to import
(no pluggy, no typing, no dataclasses), because every one-shot check pays for it.

    from healthcheck import Checker, Condition, Option, Result, Status, hookimpl
"""

from __future__ import annotations

from healthcheck._declaration import (
    CheckContext,
    Checker,
    Condition,
    NpdMonitor,
    NpdRule,
    Option,
    OptionError,
)
from healthcheck._markers import hookimpl
from healthcheck._protocol import Result, Status

__version__ = "0.1.0"

__all__ = [
    "CheckContext",
    "Checker",
    "Condition",
    "NpdMonitor",
    "NpdRule",
    "Option",
    "OptionError",
    "Result",
    "Status",
    "__version__",
    "hookimpl",
    "run_program",
]


def __getattr__(name: str):
    # run_program pulls in subprocess and selectors; only checkers that run programs pay for it.
    if name == "run_program":
        from healthcheck.sdk.process import run_program

        return run_program
    raise AttributeError(f"module 'healthcheck' has no attribute {name!r}")

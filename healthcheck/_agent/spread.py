"""Spreading the agent's writes over time, so that a fleet never writes in step.

Two moments line thousands of agents up: a DaemonSet rollout (every agent restarts within a
minute) and a fleet-wide change (a maintenance wave flips one condition on every node). Both are
spread by a random delay drawn from a generator seeded with the node name, so one node always
draws the same sequence (reproducible) and two nodes draw different ones:

- **startup**: a restarted agent reads its node at once (fail-safe adoption) but holds its first
  PATCH for ``startup_window * U(0, 1)`` unless something urgent is to be said (a condition that
  is not False). Nothing new is lost: the node still carries the conditions the previous agent
  wrote. Heartbeats follow from the first PATCH, so they keep that phase instead of aligning on
  the rollout.
- **change**: a changed condition is sent ``U(0, change_window)`` after the batch window instead
  of at once; changes meanwhile (a flip and its flip back) ride in the same PATCH, and the Events
  they raised wait for it.
"""

from __future__ import annotations

import hashlib
import random


def node_seed(node: str) -> int:
    """A stable 64-bit seed from the node name (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(node.encode("utf-8", "replace")).digest()[:8], "big")


class Spread:
    """Per-node delays: the startup offset (drawn once) and a fresh delay per change batch."""

    def __init__(self, node: str, startup_window: float, change_window: float, rng=None) -> None:
        if startup_window < 0 or change_window < 0:
            raise ValueError("spread windows must be >= 0")
        self.startup_window = float(startup_window)
        self.change_window = float(change_window)
        self._rng = rng or random.Random(node_seed(node))  # noqa: S311 - spreading, not secrets
        self.startup_offset = self._rng.uniform(0.0, self.startup_window)

    def change_delay(self) -> float:
        """Extra seconds to hold the next change batch (0 when the window is 0)."""
        if self.change_window <= 0:
            return 0.0
        return self._rng.uniform(0.0, self.change_window)


def urgent(conditions) -> bool:
    """True when a condition says something is wrong (True or Unknown): never held at start."""
    return any(c.status != "False" for c in conditions)

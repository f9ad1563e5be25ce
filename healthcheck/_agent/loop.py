"""The agent's background loops: a daemon thread that runs ``step()`` and sleeps for as long as
it says, woken early by ``_wake`` and ended by ``_stop``."""

from __future__ import annotations

import threading


class StepLoop:
    """Mixin for a class with ``step() -> seconds to sleep``.

    The class creates ``_wake`` and ``_stop`` (``threading.Event``) and ``_thread = None`` in its
    ``__init__`` (its other methods set ``_wake`` too) and names its thread in ``loop_name``.
    """

    loop_name = "loop"
    _wake: threading.Event
    _stop: threading.Event
    _thread: threading.Thread | None

    def step(self) -> float:
        raise NotImplementedError

    def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = self.step()
            self._wake.wait(max(0.0, wait))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.loop_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

"""The ``hookimpl`` marker, written so that it costs nothing to import.

It records exactly what ``pluggy.HookimplMarker("healthcheck")`` records (a ``healthcheck_impl``
attribute holding pluggy's hookimpl options), so pluggy's PluginManager recognises functions it
marks. We keep pluggy off the one-shot path: importing it costs about twice the interpreter's own
start-up on these machines (bench/coldstart.py), and a one-shot check has a budget of 3x.
"""

from __future__ import annotations

PROJECT_NAME = "healthcheck"
IMPL_ATTRIBUTE = PROJECT_NAME + "_impl"


class HookimplMarker:
    """Decorator marking a plugin function as an implementation of a ``healthcheck`` hook."""

    def __call__(
        self,
        function=None,
        *,
        hookwrapper: bool = False,
        optionalhook: bool = False,
        tryfirst: bool = False,
        trylast: bool = False,
        specname: str | None = None,
        wrapper: bool = False,
    ):
        opts = {
            "wrapper": wrapper,
            "hookwrapper": hookwrapper,
            "optionalhook": optionalhook,
            "tryfirst": tryfirst,
            "trylast": trylast,
            "specname": specname,
        }

        def mark(func):
            setattr(func, IMPL_ATTRIBUTE, opts)
            return func

        return mark if function is None else mark(function)


hookimpl = HookimplMarker()

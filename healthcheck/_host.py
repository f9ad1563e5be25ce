"""The plugin host: finds checkers in the built-ins and in every installed distribution.

Two ways in, one answer:

- :func:`discover` loads every plugin of the ``healthcheck`` entry-point group into a pluggy
  PluginManager, validates each against :mod:`healthcheck.hookspecs` and asks each for its
  checkers. A plugin that fails to import, fails validation, raises, or claims a name another
  plugin already holds is recorded as broken; the others are unaffected.
- :func:`find` serves the one-shot path: it imports only the plugin whose entry point is named
  after the requested checker and calls its hook directly, without importing pluggy. When that
  does not yield the checker it falls back to :func:`discover`, so both give the same checker.
"""

from __future__ import annotations

from healthcheck._declaration import Checker
from healthcheck._epindex import EntryPoint, read_index
from healthcheck._markers import IMPL_ATTRIBUTE
from healthcheck._protocol import describe_error
from healthcheck.sdk.text import short_repr

TYPE_CHECKING = False  # typing is not imported on the one-shot path; mypy reads this block
if TYPE_CHECKING:
    from collections.abc import Iterable

HOOK_NAME = "healthcheck_checkers"

# What a plugin may raise at import or in its hook without taking the host down: any
# exception, sys.exit(), GeneratorExit, a BaseException of its own. KeyboardInterrupt is the
# user's and passes (each such clause is preceded by one that re-raises it).
_PLUGIN_FAULTS = BaseException


class LoadedChecker:
    """A checker together with the plugin and distribution that declared it."""

    __slots__ = ("checker", "distribution", "plugin", "version")

    def __init__(self, checker: Checker, plugin: str, distribution: str, version: str) -> None:
        self.checker = checker
        self.plugin = plugin
        self.distribution = distribution
        self.version = version

    @property
    def name(self) -> str:
        return self.checker.name


class BrokenPlugin:
    """A plugin (or one checker of it) that could not be used, and why."""

    __slots__ = ("checker", "distribution", "error", "plugin")

    def __init__(self, plugin: str, distribution: str, error: str, checker: str | None = None):
        self.plugin = plugin
        self.distribution = distribution
        self.error = error
        self.checker = checker


class Catalog:
    """Everything discovery found: usable checkers by name, and broken plugins."""

    def __init__(self) -> None:
        self.checkers: dict[str, LoadedChecker] = {}
        self.broken: list[BrokenPlugin] = []

    def __iter__(self):
        return iter(sorted(self.checkers.values(), key=lambda c: c.name))


class CheckerNotFound(LookupError):
    """No installed plugin offers the requested checker (or the one that does is broken)."""


def _hookimpls(plugin) -> list:
    """The functions of ``plugin`` marked as ``healthcheck_checkers`` implementations."""
    found = []
    for attr in dir(plugin):
        func = getattr(plugin, attr, None)
        opts = getattr(func, IMPL_ATTRIBUTE, None)
        if isinstance(opts, dict) and (opts.get("specname") or attr) == HOOK_NAME:
            found.append(func)
    return found


def _checkers_from(result, plugin: str) -> list[Checker]:
    if isinstance(result, Checker):
        result = [result]
    if not isinstance(result, (list, tuple)) or not all(isinstance(c, Checker) for c in result):
        raise TypeError(f"{plugin}: {HOOK_NAME}() must return a list of healthcheck.Checker")
    return list(result)


def plugin_rank(ep: EntryPoint) -> tuple[bool, str, str]:
    """The one order of plugins wherever two compete (a checker or a command name, the order
    they are registered in): built-ins first, then by distribution and entry-point name."""
    return (not ep.builtin, ep.distribution, ep.name)


def _precedence(ep: EntryPoint, checker_name: str) -> tuple:
    # Who keeps a contested name: the entry point named after it, then the built-in, then by name.
    return (ep.name != checker_name, *plugin_rank(ep))


def _register_plugins(
    paths: list[str] | None, extra_plugins: Iterable[tuple[EntryPoint, object]]
) -> tuple:
    """Every plugin of the entry-point group, imported and registered in a pluggy
    PluginManager: ``(manager, {plugin name: EntryPoint}, [BrokenPlugin])``."""
    # pluggy only for the commands that load every plugin: `check` never imports it.
    import pluggy

    from healthcheck import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    broken: list[BrokenPlugin] = []
    by_plugin_name: dict[str, EntryPoint] = {}
    loaded: list[tuple[EntryPoint, object]] = []
    for ep in sorted(read_index(paths), key=plugin_rank):
        try:
            loaded.append((ep, ep.load()))
        except KeyboardInterrupt:
            raise
        except _PLUGIN_FAULTS as exc:
            broken.append(
                BrokenPlugin(ep.name, ep.distribution, f"import failed: {describe_error(exc)}")
            )
    loaded.extend(extra_plugins)
    for ep, obj in loaded:
        plugin_name = f"{ep.distribution}:{ep.name}"
        if pm.is_registered(obj):
            continue  # one module registered under several entry-point names
        try:
            pm.register(obj, name=plugin_name)
        except KeyboardInterrupt:
            raise
        except _PLUGIN_FAULTS as exc:
            broken.append(
                BrokenPlugin(ep.name, ep.distribution, f"invalid plugin: {describe_error(exc)}")
            )
            continue
        by_plugin_name[plugin_name] = ep
    return pm, by_plugin_name, broken


def discover(paths=None, extra_plugins=()) -> Catalog:
    """Load every plugin through pluggy and collect their checkers.

    ``paths`` overrides ``sys.path`` for the entry-point index; ``extra_plugins`` is a sequence of
    ``(EntryPoint, object)`` pairs registered as if they had been found installed (for tests and
    embedding).
    """
    pm, by_plugin_name, broken = _register_plugins(paths, extra_plugins)
    catalog = Catalog()
    catalog.broken.extend(broken)
    candidates: dict[str, list[tuple[tuple, LoadedChecker]]] = {}
    for impl in pm.hook.healthcheck_checkers.get_hookimpls():
        ep = by_plugin_name[impl.plugin_name]
        try:
            # Each plugin is asked on its own, so one that raises cannot hide the others.
            checkers = _checkers_from(impl.function(), ep.name)
        except KeyboardInterrupt:
            raise
        except _PLUGIN_FAULTS as exc:
            catalog.broken.append(BrokenPlugin(ep.name, ep.distribution, describe_error(exc)))
            continue
        for checker in checkers:
            loaded_checker = LoadedChecker(checker, ep.name, ep.distribution, ep.version)
            rank = _precedence(ep, checker.name)
            candidates.setdefault(checker.name, []).append((rank, loaded_checker))
    for name, offers in candidates.items():
        offers.sort(key=lambda pair: pair[0])
        winner = offers[0][1]
        catalog.checkers[name] = winner
        for _, loser in offers[1:]:
            catalog.broken.append(
                BrokenPlugin(
                    loser.plugin,
                    loser.distribution,
                    f"checker name {name!r} is already provided by {winner.distribution} "
                    f"({winner.plugin})",
                    checker=name,
                )
            )
    return catalog


def find(name: str, paths=None) -> LoadedChecker:
    """The checker called ``name``, loading as little as possible.

    Raises :class:`CheckerNotFound` with a one-line message when no usable plugin offers it.
    """
    named = sorted(
        (ep for ep in read_index(paths) if ep.name == name),
        key=plugin_rank,
    )
    if named:
        ep = named[0]
        try:
            plugin = ep.load()
            impls = _hookimpls(plugin)
            if len(impls) == 1:
                for checker in _checkers_from(impls[0](), ep.name):
                    if checker.name == name:
                        return LoadedChecker(checker, ep.name, ep.distribution, ep.version)
        except KeyboardInterrupt:
            raise
        except _PLUGIN_FAULTS:
            pass  # discover() below records the same failure with its full context
    catalog = discover(paths)
    if name in catalog.checkers:
        return catalog.checkers[name]
    for broken in catalog.broken:
        if broken.checker == name or (broken.checker is None and broken.plugin == name):
            raise CheckerNotFound(
                f"checker {short_repr(name, 100)} is broken ({broken.distribution}): {broken.error}"
            )
    known = ", ".join(sorted(catalog.checkers)) or "none installed"
    raise CheckerNotFound(f"unknown checker {short_repr(name, 100)} (available: {known})")

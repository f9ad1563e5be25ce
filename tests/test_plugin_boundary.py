"""The plugin boundary: built-in checkers use nothing a third-party plugin cannot.

Every module of the installed ``healthcheck_plugins`` package and of the example plugin(s) under
``examples/`` may import, from this project, only

- ``healthcheck`` (the names in its ``__all__``) and ``healthcheck.hookspecs``;
- a public SDK module ``healthcheck.sdk.<name>`` and the names it documents (its ``__all__``;
  ``docs/sdk.md`` documents exactly those);
- its own family's package: ``healthcheck_plugins.<family>...`` where ``<family>`` is the first
  component under ``healthcheck_plugins`` of the importing module (an example has no family).

The same goes for attributes read from an imported SDK module (``http.request``). And
``docs/sdk.md`` documents every public module of ``healthcheck/sdk`` and every public name of
each, and nothing else, so the page and the code cannot drift apart.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import healthcheck
import healthcheck_plugins

REPO = Path(__file__).resolve().parent.parent
SDK_PAGE = REPO / "docs" / "sdk.md"
SDK_DIR = Path(importlib.util.find_spec("healthcheck.sdk").submodule_search_locations[0])
PLUGINS_DIR = Path(healthcheck_plugins.__file__).parent
ROOT_SUBMODULES = {"sdk", "hookspecs"}


# ----------------------------------------------------------------------------- the SDK's names


def _module_tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _defined_names(tree: ast.Module) -> set[str]:
    """Names a module defines at top level (not those it imports)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names - {"__all__", "TYPE_CHECKING"}


def _declared_all(tree: ast.Module) -> set[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return None


def sdk_modules(sdk_dir: Path = SDK_DIR) -> dict[str, Path]:
    """The public SDK modules: ``healthcheck/sdk/<name>.py`` without a leading underscore."""
    return {p.stem: p for p in sorted(sdk_dir.glob("*.py")) if not p.stem.startswith("_")}


def sdk_public_names(path: Path) -> set[str]:
    """The SDK names a plugin may use from a module: its ``__all__``, else every top-level name
    it defines without a leading underscore."""
    tree = _module_tree(path)
    declared = _declared_all(tree)
    if declared is not None:
        return declared
    return {n for n in _defined_names(tree) if not n.startswith("_")}


# ------------------------------------------------------------------------------- the checker


class Boundary:
    """What a plugin may import: the root API's names and each public SDK module's names."""

    def __init__(self, root_names: set[str], sdk: dict[str, set[str]]) -> None:
        self.root_names = root_names
        self.sdk = sdk

    def module(self, dotted: str, where: str, family: str | None) -> list[str]:
        """Violations of importing the module ``dotted`` (as a whole)."""
        parts = dotted.split(".")
        if parts[0] == "healthcheck":
            if len(parts) == 1 or dotted == "healthcheck.hookspecs":
                return []
            if parts[1] == "sdk":
                if len(parts) == 2:
                    return []
                if len(parts) == 3 and parts[2] in self.sdk:
                    return []
                return [f"{where}: imports {dotted}, not a public SDK module (docs/sdk.md)"]
            return [f"{where}: imports {dotted}, a private module of the host"]
        if parts[0] == "healthcheck_plugins" and len(parts) > 1 and parts[1] != family:
            own = f"family {family!r}" if family else "no family (a third-party plugin)"
            return [f"{where}: imports {dotted}, another family's code ({own})"]
        return []

    def name(self, module: str, name: str, where: str, family: str | None) -> list[str]:
        """Violations of ``from module import name`` (``module`` already allowed)."""
        if module == "healthcheck":
            if name in self.root_names or name in ROOT_SUBMODULES:
                return []
            return [f"{where}: imports healthcheck.{name}, not in healthcheck.__all__"]
        if module == "healthcheck.sdk":
            return self.module(f"healthcheck.sdk.{name}", where, family)
        if module == "healthcheck.hookspecs":
            return [] if not name.startswith("_") else [f"{where}: imports {module}.{name}"]
        if module.startswith("healthcheck.sdk."):
            sdk_module = module.rsplit(".", 1)[1]
            if sdk_module not in self.sdk or name in self.sdk[sdk_module]:
                return []  # a private module is reported once, as a module
            return [f"{where}: uses {module}.{name}, which docs/sdk.md does not document"]
        if module == "healthcheck_plugins":
            return self.module(f"healthcheck_plugins.{name}", where, family)
        return []

    def check(self, source: str, filename: str, module: str, family: str | None) -> list[str]:
        """Every violation in ``source``, the text of module ``module`` (dotted)."""
        tree = ast.parse(source, filename)
        package = module.rsplit(".", 1)[0] if not filename.endswith("__init__.py") else module
        found: list[str] = []
        sdk_aliases: dict[str, str] = {}  # local name -> "healthcheck.sdk.x" or "healthcheck"
        for node in ast.walk(tree):
            where = f"{filename}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found += self.module(alias.name, where, family)
                    if alias.asname and alias.name.startswith("healthcheck.sdk."):
                        sdk_aliases[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                found += self.module(base, where, family)
                for alias in node.names:
                    found += self.name(base, alias.name, where, family)
                    if base == "healthcheck.sdk":
                        sdk_aliases[alias.asname or alias.name] = f"healthcheck.sdk.{alias.name}"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            chain = [node.attr]
            value = node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if not isinstance(value, ast.Name):
                continue
            chain.append(value.id)
            dotted = ".".join(reversed(chain))
            head = dotted.split(".")
            if head[0] in sdk_aliases and len(head) >= 2:
                target = sdk_aliases[head[0]]
                if target.rsplit(".", 1)[1] in self.sdk:
                    found += self.name(target, head[1], f"{filename}:{node.lineno}", family)
            elif head[:2] == ["healthcheck", "sdk"] and len(head) >= 4 and head[2] in self.sdk:
                found += self.name(f"healthcheck.sdk.{head[2]}", head[3], filename, family)
        return sorted(set(found))


def the_boundary() -> Boundary:
    sdk = {name: sdk_public_names(path) for name, path in sdk_modules().items()}
    return Boundary(set(healthcheck.__all__), sdk)


def _plugin_sources() -> list[tuple[Path, str, str, str | None]]:
    """(file, name shown, dotted module, family) of every built-in and example plugin module."""
    sources = []
    for path in sorted(PLUGINS_DIR.rglob("*.py")):
        rel = path.relative_to(PLUGINS_DIR)
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        family = parts[0] if parts else None
        module = ".".join(["healthcheck_plugins", *parts])
        sources.append((path, f"healthcheck_plugins/{rel}", module, family))
    for path in sorted((REPO / "examples").rglob("*.py")):
        sources.append((path, str(path.relative_to(REPO)), path.stem, None))
    return sources


def test_plugins_import_only_the_public_api_the_sdk_and_their_own_family():
    boundary = the_boundary()
    violations = []
    sources = _plugin_sources()
    assert any(family == "component" for *_, family in sources)  # the package was found
    assert any(module == "healthcheck_example" for _, _, module, _ in sources)
    for path, shown, module, family in sources:
        violations += boundary.check(path.read_text(encoding="utf-8"), shown, module, family)
    assert not violations, "plugins cross the boundary:\n" + "\n".join(violations)


# ------------------------------------------------------------------- the checker checks itself

SYNTHETIC = """
import os
import healthcheck
import healthcheck._runner
from healthcheck import Checker, Result, hookimpl
from healthcheck import _declaration
from healthcheck._protocol import Result as R
from healthcheck.hookspecs import healthcheck_checkers
from healthcheck.sdk import http, journal as j, _http_wire
from healthcheck.sdk.http import request, _Reader
from healthcheck.sdk._journalctl import start
from healthcheck.sdk.repair import Repair, apply
import healthcheck.sdk.state as st
from healthcheck_plugins.component import checker
from healthcheck_plugins.log_counter.logbuffer import group
from healthcheck_plugins import log_counter
from . import window
from ..component.kubelet import CHECKER


def f():
    http.request("GET", "/")
    http._exchange()
    j.read_messages()
    j._Window()
    st.read_only()
    healthcheck.sdk.http.probe_status("x")
    healthcheck.sdk.http._port("1", "x")
"""


def test_the_checker_catches_every_kind_of_crossing():
    boundary = Boundary(
        {"Checker", "Result", "hookimpl"},
        {
            "http": {"request", "probe_status"},
            "journal": {"read_messages"},
            "repair": {"Repair"},
            "state": {"locked_state"},
        },
    )
    found = boundary.check(
        SYNTHETIC, "x.py", "healthcheck_plugins.log_counter.checker", "log_counter"
    )
    text = "\n".join(found)
    for crossing in (
        "imports healthcheck._runner, a private module",
        "imports healthcheck._declaration, not in healthcheck.__all__",
        "imports healthcheck._protocol, a private module",
        "imports healthcheck.sdk._http_wire, not a public SDK module",
        "uses healthcheck.sdk.http._Reader",
        "imports healthcheck.sdk._journalctl, not a public SDK module",
        "uses healthcheck.sdk.repair.apply",
        "imports healthcheck_plugins.component, another family's code",
        "imports healthcheck_plugins.component.kubelet, another family's code",
        "uses healthcheck.sdk.http._exchange",
        "uses healthcheck.sdk.journal._Window",
        "uses healthcheck.sdk.state.read_only",
        "uses healthcheck.sdk.http._port",
    ):
        assert crossing in text, f"missed: {crossing}\nfound:\n{text}"
    # the allowed lines are not reported: os, healthcheck, its __all__, hookspecs, public SDK
    # names, the own family (absolute and relative)
    for allowed in (
        "healthcheck.Checker",
        "hookspecs",
        "http.request",
        "probe_status",
        "read_messages",
        "log_counter.logbuffer",
        "log_counter.window",
        ".Repair",
    ):
        assert allowed not in text, f"wrongly reported {allowed}:\n{text}"
    assert len(found) == 13, text


def test_a_third_party_plugin_has_no_family_to_import_from():
    boundary = Boundary({"Checker"}, {})
    found = boundary.check(
        "from healthcheck_plugins.conntrack import CHECKER\nimport healthcheck_plugins.x\n",
        "example.py",
        "example",
        None,
    )
    assert len(found) == 2 and all("no family (a third-party plugin)" in f for f in found)


def test_a_clean_plugin_has_no_violations():
    clean = (
        "from healthcheck import Checker, Result, hookimpl\n"
        "from healthcheck.sdk import http\n"
        "from .logbuffer import group\n"
        "def f():\n    return http.request('GET', 'http://x/')\n"
    )
    found = Boundary({"Checker", "Result", "hookimpl"}, {"http": {"request"}}).check(
        clean, "c.py", "healthcheck_plugins.log_counter.checker", "log_counter"
    )
    assert found == []


# ------------------------------------------------------------------ the page and the code agree

_MODULE_HEADING = re.compile(r"^## `healthcheck\.sdk\.([a-z_0-9]+)`\s*$")
_NAME_HEADING = re.compile(r"^### (.*)$")
_SPAN = re.compile(r"`([A-Za-z_][A-Za-z_0-9]*)[^`]*`")
_HOST_ONLY = re.compile(r"^- `healthcheck\.sdk\.([a-z_0-9]+)\.([A-Za-z_0-9]+)`")


def parse_sdk_page(text: str) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """``({module: documented names}, {(module, host-only name)})`` from docs/sdk.md: a module is
    a ``## `healthcheck.sdk.x` `` heading, a name each backticked name in a ``###`` heading under
    it, a host-only name a ``- `healthcheck.sdk.x.name` `` item under "Not part of the SDK"."""
    documented: dict[str, set[str]] = {}
    host_only: set[tuple[str, str]] = set()
    module: str | None = None
    in_host_only = False
    for line in text.splitlines():
        if line.startswith("## "):
            match = _MODULE_HEADING.match(line)
            module = match.group(1) if match else None
            in_host_only = line.strip() == "## Not part of the SDK"
            if module is not None:
                documented.setdefault(module, set())
            continue
        heading = _NAME_HEADING.match(line)
        if heading and module is not None:
            documented[module].update(_SPAN.findall(heading.group(1)))
        host = _HOST_ONLY.match(line)
        if host and in_host_only:
            host_only.add((host.group(1), host.group(2)))
    return documented, host_only


def test_the_page_parser_reads_modules_names_and_host_only_names():
    page = (
        "# t\n## `healthcheck.sdk.http`\ntext `not_a_name`\n### `request(method, url)`\n"
        "### `A`, `B`\n## Other\n### `nothing`\n## Not part of the SDK\n"
        "- `healthcheck.sdk.repair.apply`: the runner's.\n"
    )
    assert parse_sdk_page(page) == ({"http": {"request", "A", "B"}}, {("repair", "apply")})


def test_docs_sdk_md_documents_every_public_sdk_module_and_name_and_nothing_else():
    documented, host_only = parse_sdk_page(SDK_PAGE.read_text(encoding="utf-8"))
    problems = []
    for name, path in sdk_modules().items():
        public = sdk_public_names(path)
        if name not in documented:
            problems.append(f"healthcheck.sdk.{name} has no section in docs/sdk.md")
            continue
        for missing in sorted(public - documented[name]):
            problems.append(f"healthcheck.sdk.{name}.{missing} is public but not documented")
        for extra in sorted(documented[name] - public):
            problems.append(f"docs/sdk.md documents healthcheck.sdk.{name}.{extra}: not public")
        # A name without an underscore that is neither documented nor listed as host-only
        # would be a public name nobody promised anything about.
        tree = _module_tree(path)
        for loose in sorted(_defined_names(tree) - public):
            if not loose.startswith("_") and (name, loose) not in host_only:
                problems.append(
                    f"healthcheck.sdk.{name}.{loose}: neither documented, host-only nor private"
                )
    for module, name in sorted(host_only):
        path = SDK_DIR / f"{module}.py"
        if not path.exists() or name not in _defined_names(_module_tree(path)):
            problems.append(f"docs/sdk.md lists healthcheck.sdk.{module}.{name}, which is gone")
        elif name in sdk_public_names(path):
            problems.append(f"healthcheck.sdk.{module}.{name} is host-only but in __all__")
    assert not problems, "docs/sdk.md and healthcheck/sdk disagree:\n" + "\n".join(problems)


def test_every_module_docs_sdk_md_documents_exists():
    documented, _ = parse_sdk_page(SDK_PAGE.read_text(encoding="utf-8"))
    gone = sorted(set(documented) - set(sdk_modules()))
    assert not gone, f"docs/sdk.md documents modules healthcheck/sdk does not have: {gone}"

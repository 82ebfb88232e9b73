"""The layers and the import graph, read from the source with `ast` (nothing is imported).

Every import counts: at module level, inside functions, and under ``if TYPE_CHECKING:``.
The packages are layered, bottom up::

    voxwire.models       model backends behind small interfaces
    voxwire.engine       sans-I/O cores, sessions, scheduler (may use models' interfaces)
    voxwire.services     domain services without a web framework (classification,
                         speakers, workflows, replies, media codecs, the runtime)
    voxwire.demos        clients of a running server (the microphone demo, the page)
    voxwire.transports   the edges: realtime, webrtc, http, wyoming, cli, bench

A module may import its own package and the packages below it, never one above; and no
set of voxwire modules may import each other in a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("models", "engine", "services", "demos", "transports")
"""voxwire's packages, lowest first; each folder sits at the top of the repository."""


def module_name(path: Path) -> str:
    parts = ["voxwire", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def voxwire_modules() -> dict[str, Path]:
    return {
        module_name(path): path for layer in LAYERS for path in sorted((ROOT / layer).rglob("*.py"))
    }


def imported_names(name: str, path: Path) -> Iterator[str]:
    """Every module name `path` imports (absolute or relative; `from a import b` gives
    both a and a.b, since b may be a module)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".")
                package = package if is_package else package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """voxwire module -> the voxwire modules it imports."""
    modules = voxwire_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {t for t in imported_names(name, path) if t in modules and t != name}
        # `import voxwire.x.y` also imports its packages; they hold no code worth an edge
        graph[name] = {t for t in targets if modules[t].name != "__init__.py"}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[1])


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{source} -> {target}"
        for source, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer(target) > layer(source)
    ]


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "voxwire.engine.session" in graph["voxwire.engine.driver"]
    assert "voxwire.engine.wake_gate" in graph["voxwire.transports.realtime.classifiers"]
    assert len(graph) > 80


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_no_import_points_up_a_layer() -> None:
    """models import no engine; engine and models no services or transports; services no
    transports (nor demos); demos no transports."""
    assert upward_imports(import_graph()) == []


def test_no_old_top_level_names() -> None:
    """Everything imports voxwire.engine etc.; the bare folder names would load a second
    copy of a module when run from the repository root."""
    old = {"engine", "models", "services", "transports", "demos"}
    found = [
        f"{path.relative_to(ROOT)}: {target}"
        for folder in (*LAYERS, "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for target in imported_names(module_name(path), path)
        if target.split(".")[0] in old
    ]
    assert found == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"voxwire.engine.a": {"voxwire.engine.b"}, "voxwire.engine.b": set()}, []),
        (
            {
                "voxwire.engine.a": {"voxwire.engine.b"},
                "voxwire.engine.b": {"voxwire.engine.c"},
                "voxwire.engine.c": {"voxwire.engine.a"},
            },
            [["voxwire.engine.a", "voxwire.engine.b", "voxwire.engine.c"]],
        ),
    ],
)
def test_cycles_are_found(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(graph) == expected


def test_upward_imports_are_found() -> None:
    graph = {
        "voxwire.models.x": {"voxwire.engine.y"},
        "voxwire.engine.y": {"voxwire.models.x"},
        "voxwire.services.z": {"voxwire.transports.http.app"},
    }
    assert upward_imports(graph) == [
        "voxwire.models.x -> voxwire.engine.y",
        "voxwire.services.z -> voxwire.transports.http.app",
    ]


def test_type_checking_imports_count(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from voxwire.transports.http.settings import ServerSettings\n"
        "def f():\n"
        "    from . import sibling\n"
    )
    names = set(imported_names("voxwire.services.m", source))
    assert "voxwire.transports.http.settings" in names
    assert "voxwire.services.sibling" in names

"""lib/offrl's imports point down its layers and never close a circle: read from the source (ast), nothing imported.

Every import counts, module level or inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "lib" / "offrl"

# The layers, lowest first; a module may import its own layer (without a circle) and those below.
# A module belongs to the longest prefix that names it (``safer.commands`` is a command, the rest of ``safer`` is not).
LAYERS: list[tuple[str, ...]] = [
    (
        "files",
        "stats",
        "device",
        "nets",
        "simhash",
        "options",
        "loop",
        "capture",
        "provenance",
    ),  # import nothing of offrl but each other
    ("envs", "policies"),  # the D4RL MuJoCo specs; actors saved and loaded
    ("data",),  # datasets: read, generate, contaminate
    ("algos",),  # one file per algorithm; algos.base at their bottom
    ("qdiagnostic", "evaluate"),  # rollouts of snapshots and the Q diagnostic
    ("train", "online", "bench"),  # the offline loop, online TD3 behaviour policies, timing
    ("report",),  # tables, figures, the findings
    ("safer",),  # the SAFER study
    ("config",),  # the workflow config's checks (it knows the presets and SAFER's prior kinds)
    (
        "commands",
        "safer.commands",
        "plan",
        "cli",
        "__main__",
    ),  # the command line: its areas (the cost plan too), then the trunk
]


def module_name(path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, ast.Module]:
    """Every module of lib/offrl by its name under ``offrl`` (a package by its ``__init__``), parsed."""
    return {module_name(path): ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, tree: ast.Module, modules: set[str]) -> set[str]:
    """The offrl modules ``name`` imports anywhere in its file, with the packages whose ``__init__`` that runs."""
    is_package = any(m.startswith(f"{name}.") for m in modules)
    package = name if is_package else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the importing module's package
                base = package.split(".") if package else []
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
                source = f"offrl.{source}" if source else "offrl"
            else:
                source = node.module or ""
            # ``from offrl.report import findings``: a submodule if there is one, else a name in the module.
            names = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}".removeprefix("offrl.") in modules else source
                for alias in node.names
            ]
        else:
            continue
        for full in names:
            if full != "offrl" and not full.startswith("offrl."):
                continue
            target = full.removeprefix("offrl.")
            while target and target not in modules:  # ``import offrl.algos.td3bc.X``-style attribute paths
                target = target.rpartition(".")[0]
            if not target:
                continue
            targets.add(target)
            # Importing a.b.c runs the __init__ of a and a.b, unless the importer already lives in them.
            parts = target.split(".")
            for i in range(1, len(parts)):
                ancestor = ".".join(parts[:i])
                if ancestor in modules and not (name == ancestor or name.startswith(f"{ancestor}.")):
                    targets.add(ancestor)
    targets.discard(name)
    return targets


def import_graph() -> dict[str, set[str]]:
    trees = package_modules()
    names = set(trees)
    return {name: imported(name, tree, names) for name, tree in trees.items()}


def layer_of(name: str, layers: list[tuple[str, ...]] = LAYERS) -> int | None:
    """The index of the layer whose longest prefix names the module; None if no layer does."""
    best, best_length = None, -1
    for index, prefixes in enumerate(layers):
        for prefix in prefixes:
            if (name == prefix or name.startswith(f"{prefix}.")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    return best


def upward_imports(graph: dict[str, set[str]], layers: list[tuple[str, ...]] = LAYERS) -> list[str]:
    return sorted(
        f"{name} (layer {layer_of(name, layers)}) imports {target} (layer {layer_of(target, layers)})"
        for name, targets in graph.items()
        for target in targets
        if layer_of(target, layers) > layer_of(name, layers)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected set of modules (Tarjan), as the module names in order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_layer():
    assert [name for name in import_graph() if name and layer_of(name) is None] == []


def test_imports_point_down_the_layers():
    assert upward_imports(import_graph()) == []


def test_no_import_circle():
    assert circles(import_graph()) == []


@pytest.mark.parametrize("relative", [False, True])
def test_the_checks_find_a_circle_and_an_upward_import(relative):
    """The checks on a made-up package: data imports train (upward), train and algos.base import each other."""
    sources = {
        "files": "",
        "data": "from offrl.files import write_atomically\ndef f():\n    import offrl.train\n",
        "algos": "",
        "algos.base": "from .. import train\n" if relative else "def f():\n    from offrl import train\n",
        "train": "from offrl.algos import base\n",
    }
    names = set(sources)
    graph = {name: imported(name, ast.parse(source), names) for name, source in sources.items()}
    assert graph == {
        "files": set(),
        "data": {"files", "train"},
        "algos": set(),
        "algos.base": {"train"},
        "train": {"algos.base", "algos"},
    }
    layers = [("files",), ("data",), ("algos",), ("train",)]
    assert upward_imports(graph, layers) == [
        "algos.base (layer 2) imports train (layer 3)",
        "data (layer 1) imports train (layer 3)",
    ]
    assert circles(graph) == [["algos.base", "train"]]

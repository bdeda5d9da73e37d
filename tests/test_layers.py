"""The package's import graph: layers import downward only, and no group of modules imports
itself round in a cycle (lazy imports inside functions count: they are dependencies too)."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mav_jax"
CONFIGS = ROOT / "configs"  # installed as mav_jax.configs

# Lower numbers sit lower; a module may import its own layer or any below it.
LAYERS = {
    "mav_jax": 0,  # the package root and its small shared helpers
    "mav_jax.config_dataclass": 0,
    "mav_jax.state_paths": 0,
    "mav_jax.cli_logging": 0,
    "mav_jax.exports": 0,
    "mav_jax.nn": 0,
    "mav_jax.diffusion": 0,
    "mav_jax.data": 0,
    "mav_jax.parallel": 0,
    "mav_jax.configs": 0,  # configs import nothing but ml_collections and each other
    "mav_jax.models": 1,
    "mav_jax.eval": 2,
    "mav_jax.stages": 2,
    "mav_jax.train": 3,
    "mav_jax.cascade": 4,
    "mav_jax.plan": 4,
    "mav_jax.plan_tpu": 4,
    # Command-line tools: the top.
    "mav_jax.sample": 5,
    "mav_jax.quickstart": 5,
    "mav_jax.export": 5,
    "mav_jax.fvd": 5,
    "mav_jax.clipsim": 5,
    "mav_jax.train.__main__": 5,
    "mav_jax.data.build": 5,
}


def module_name(path: pathlib.Path) -> str:
    if path.is_relative_to(CONFIGS):
        parts = ("mav_jax", "configs", *path.relative_to(CONFIGS).with_suffix("").parts)
    else:
        parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> tuple[str, int]:
    """The most specific LAYERS entry `module` falls under."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return prefix, LAYERS[prefix]
    raise KeyError(module)


def imports_of(path: pathlib.Path, name: str, modules: set[str]) -> set[str]:
    """The mav_jax modules `path` imports, anywhere in the file. `from package import module`
    depends on that module only; `from module import name` on the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & modules
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(base)
    return {m for m in found if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in [*PACKAGE.rglob("*.py"), *CONFIGS.glob("*.py")]}
    return {name: imports_of(path, name, set(modules)) for name, path in modules.items()}


def test_every_module_has_a_layer(graph):
    unplaced = []
    for module in graph:
        try:
            layer_of(module)
        except KeyError:
            unplaced.append(module)
    assert not unplaced, f"add these to LAYERS: {unplaced}"


def test_imports_go_downward_only(graph):
    upward = []
    for module, imported in graph.items():
        group, level = layer_of(module)
        for target in imported:
            target_group, target_level = layer_of(target)
            if target_level > level:
                upward.append(f"{module} ({group}, {level}) imports {target} ({target_level})")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles(graph):
    """Cycles between modules, and between the layer groups (subpackages) they belong to."""
    grouped: dict[str, set[str]] = {}
    for module, imported in graph.items():
        group = layer_of(module)[0]
        grouped.setdefault(group, set()).update(
            layer_of(t)[0] for t in imported if layer_of(t)[0] != group
        )
    for edges, what in ((graph, "modules"), (grouped, "layer groups")):
        cycle = find_cycle(edges)
        assert cycle is None, f"import cycle between {what}: {' -> '.join(cycle)}"


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph `edges`, as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_find_cycle_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None

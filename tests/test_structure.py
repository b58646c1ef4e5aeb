"""The engine's structure: a one-way street of imports, suites as plug-ins, small modules.

The imports are read from the source (``ast``), function-level imports included, so a
cycle hidden inside a function counts too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("suites", "kernels", "bench")
#: The engine's modules: everything of ``suites`` that is not a suite or an optimizer.
ENGINE = ("suites/api.py", "suites/atomic.py", "suites/cli.py", "suites/common.py",
          "suites/leaderboard.py", "suites/selection.py", "suites/registry.py",
          "suites/results.py",
          "suites/search_space.py", "suites/submission.py", "suites/training.py",
          "suites/tuning.py", "suites/executors", "suites/sitegen", "suites/site_data",
          "suites/record.py", "suites/evaluation.py", "suites/estimate.py", "suites/verify.py",
          "suites/validation.py", "suites/sweeps.py", "suites/sandbox.py",
          "suites/worker_process.py", "suites/process_tree.py", "suites/store_files.py",
          "suites/console.py")
MAX_LINES = 620


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if any(part.startswith(".") for part in path.relative_to(ROOT).parts):
                continue  # bench/.asv: asv's environments and checkouts, not ours
            modules[module_name(path)] = path
    return modules


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``path`` imports (``from a import b`` is ``a.b`` when that
    is a module, else ``a``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a name inside a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walker_sees_a_cycle_when_there_is_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_walker_resolves_imports(graph):
    assert "suites.api" in graph["suites.training"]
    assert "suites.executors.base" in graph["suites.tuning"]
    assert "kernels.scan" in graph["suites.lra.model"] or any(
        m.startswith("kernels") for m in graph["suites.lra.model"])


def test_no_import_cycle_in_the_project(graph):
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


#: The contracts: what every process that makes, moves or reads a run agrees on.
CONTRACTS = {"suites.api", "suites.record"}


def test_the_contracts_import_no_engine_module(graph):
    assert not {m for m in graph["suites.api"] if m.startswith("suites")}
    assert {m for m in graph["suites.record"] if m.startswith("suites")} == {"suites.api"}


def test_one_run_imports_only_the_contracts(graph):
    assert {m for m in graph["suites.training"] if m.startswith("suites")} == CONTRACTS


def test_the_sandbox_and_process_layer_imports_no_engine_module(graph):
    for name in ("suites.sandbox", "suites.process_tree", "suites.worker_process"):
        engine = {m for m in graph[name] if m.startswith("suites")}
        assert engine <= {"suites.sandbox", "suites.process_tree"}, (name, engine)


def engine_files() -> list[Path]:
    files = []
    for entry in ENGINE:
        path = ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def test_the_engine_never_names_a_suite(graph):
    from suites import registry

    suites = registry.discovered_suites()
    assert {"chain", "valley", "lra"} <= set(suites)
    for path in engine_files():
        name = module_name(path)
        named = {m for m in graph[name] if m.split(".")[1:2] and m.split(".")[1] in suites}
        assert not named, f"{name} imports the suite modules {sorted(named)}"
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docstrings:
                words = set(node.value.replace("/", " ").replace("'", " ").split())
                assert not words & set(suites), f"{name} names a suite: {node.value!r}"


def test_no_module_is_much_over_600_lines():
    long = {module_name(p): n for p in project_modules().values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules: {long}"


#: The layers, bottom first: a package may import only itself and the packages before it.
LAYERS = {"kernels": set(), "bench": {"kernels"}, "suites": {"kernels"}}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_layer_imports_only_the_layers_below_it(graph, package):
    allowed = {package} | LAYERS[package]
    wrong = {f"{name} -> {target}" for name, targets in graph.items()
             if name.split(".")[0] == package
             for target in targets if target.split(".")[0] not in allowed}
    assert not wrong, f"{package} may import only {sorted(allowed)}: {sorted(wrong)}"


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_no_run_file_holds_a_machine_fact():
    """Run files are published: no absolute path of the machine that made them, no host
    name (the machine's label says where a run was made)."""
    import json
    import re

    from suites.training import environment

    assert "hostname" not in environment() and environment()["machine"]
    absolute = re.compile(r"^(/|[A-Za-z]:\\)")
    files = sorted((ROOT / "results" / "runs").rglob("*.json"))
    assert files, "no committed run files"
    for path in files:
        document = json.loads(path.read_text())
        assert "hostname" not in document.get("env", {}), path
        leaks = [s for s in _strings(document) if absolute.match(s) or str(Path.home()) in s]
        assert not leaks, f"{path.relative_to(ROOT)} holds {leaks[:3]}"


def _mentions_orientation(node: ast.AST) -> bool:
    return any((isinstance(n, ast.Attribute) and n.attr == "higher_is_better")
               or (isinstance(n, ast.Name) and n.id in {"higher", "higher_is_better"})
               or (isinstance(n, ast.Constant) and n.value == "higher_is_better")
               for n in ast.walk(node))


def _orients(node: ast.AST) -> bool:
    """A negation, or a min/max: what turning a score around, or picking the best or the
    worst of some, is made of."""
    return any(isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub)
               or isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
               and n.func.id in {"min", "max"}
               for n in ast.walk(node))


def test_the_orientation_rules_live_in_metric_alone():
    """No module but ``suites/api.py`` turns a score around or picks a best or worst by
    asking which way its metric points: they call ``Metric`` (``oriented``,
    ``from_oriented``, ``best``, ``worst``, ``better``, ``ratio``) instead."""
    by_hand = []
    for name, path in project_modules().items():
        if not name.startswith("suites.") or name == "suites.api":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.IfExp, ast.If)) and _mentions_orientation(node.test) \
                    and any(_orients(branch) for branch in
                            ([node.body, node.orelse] if isinstance(node, ast.IfExp)
                             else [*node.body, *node.orelse])):
                by_hand.append(f"{name}:{node.lineno}")
    assert not by_hand, f"orientation by hand (use suites.api.Metric): {by_hand}"


def readme_layers() -> list[set[str]]:
    """The README's module table, row by row: the module names each row names."""
    text = (ROOT / "README.md").read_text()
    table = text.split("| module | responsibility |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        paths = re.findall(r"`(suites/[^`]+)`", line.split("|")[1])
        rows.append({p.removesuffix(".py").removesuffix("/").replace("/", ".") for p in paths})
    return rows


def test_the_readme_module_table_is_the_import_order(graph):
    """Each engine module imports only modules of its own row of the README's table or of
    the rows above it (a package's row covers its modules)."""
    rows = readme_layers()
    assert len(rows) >= 10, rows

    def row_of(module: str) -> int | None:
        for index, names in enumerate(rows):
            if any(module == n or module.startswith(n + ".") for n in names):
                return index
        return None

    wrong = []
    for name in sorted(graph):
        row = row_of(name)
        if row is None:
            continue
        for target in sorted(graph[name]):
            target_row = row_of(target)
            if target_row is not None and target_row > row:
                wrong.append(f"{name} (row {row + 1}) -> {target} (row {target_row + 1})")
    assert not wrong, wrong


def test_every_engine_module_is_in_the_readme_table():
    named = set().union(*readme_layers())
    missing = [module_name(p) for p in engine_files()
               if not any(module_name(p) == n or module_name(p).startswith(n + ".")
                          for n in named)]
    assert not missing, missing

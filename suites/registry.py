"""Where suites, tasks and built-in optimizers come from.

Suites are discovered, never listed: a suite is

- a package under ``suites/`` whose ``__init__.py`` defines ``tasks()`` (the built-ins);
- a package in a directory named by ``$LSB_SUITE_PATH`` (directories separated by
  ``os.pathsep``) whose ``__init__.py`` defines ``tasks()``: a suite in progress,
  outside this checkout;
- or a module that an installed distribution names under the ``lsb.suites`` entry-point
  group (``[project.entry-points."lsb.suites"] mysuite = "mysuite"``).

What a suite package exports is ``suites.api.SuiteModule``. Suites are ordered by their
optional ``POSITION`` (default 100), then by name. A suite that fails to import is an
error that names it. Built-in optimizers are the files ``suites/optimizers/*.py``
(files starting with ``_`` are shared helpers, not optimizers).
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import functools
import importlib
import os
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from suites.api import Task

SUITES_DIR = Path(__file__).resolve().parent
OPTIMIZERS_DIR = SUITES_DIR / "optimizers"
#: Directories of suites outside this checkout (``os.pathsep``-separated).
SUITE_PATH_ENV = "LSB_SUITE_PATH"
ENTRY_POINT_GROUP = "lsb.suites"
DEFAULT_POSITION = 100


def _defines_tasks(init: Path) -> bool:
    """Whether a package's ``__init__.py`` defines ``tasks`` at top level (read, not run)."""
    try:
        tree = ast.parse(init.read_bytes(), filename=str(init))
    except (OSError, SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "tasks":
            return True
        if isinstance(node, ast.ImportFrom) and any(a.asname == "tasks" or
                                                    (a.name == "tasks" and a.asname is None)
                                                    for a in node.names):
            return True
    return False


def _packages_with_tasks(directory: Path) -> list[str]:
    return sorted(
        child.name for child in directory.iterdir()
        if child.is_dir() and child.name.isidentifier() and _defines_tasks(child / "__init__.py")
    ) if directory.is_dir() else []


@functools.cache
def _suite_sources() -> dict[str, str]:
    """Suite name → the module to import for it."""
    sources = {name: f"suites.{name}" for name in _packages_with_tasks(SUITES_DIR)}
    for entry in os.environ.get(SUITE_PATH_ENV, "").split(os.pathsep):
        if not entry:
            continue
        directory = Path(entry).resolve()
        found = _packages_with_tasks(directory)
        if found and str(directory) not in sys.path:
            sys.path.append(str(directory))
        for name in found:
            sources.setdefault(name, name)
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        sources.setdefault(point.name, point.value)
    return sources


@functools.cache
def suite_module(suite: str) -> ModuleType:
    """The imported package (or module) of ``suite``; ``KeyError`` if there is none."""
    sources = _suite_sources()
    if suite not in sources:
        raise KeyError(f"no suite named {suite!r}; suites: {', '.join(available_suites())}")
    try:
        module = importlib.import_module(sources[suite])
    except Exception as err:
        raise ImportError(f"suite {suite!r} ({sources[suite]}) failed to import: {err}") from err
    if not callable(getattr(module, "tasks", None)):
        raise ImportError(f"suite {suite!r} ({sources[suite]}) defines no tasks() function")
    return module


def discovered_suites() -> list[str]:
    """The suites that discovery finds, by ``POSITION`` then name."""
    def position(suite: str) -> tuple[int, str]:
        return (int(getattr(suite_module(suite), "POSITION", DEFAULT_POSITION)), suite)

    return sorted(_suite_sources(), key=position)


def available_suites() -> list[str]:
    """The suites whose tasks are run and shown (``discovered_suites``)."""
    return discovered_suites()


def suite_hook(suite: str, name: str, default: Any = None) -> Any:
    """An optional export of a discovered suite (``suites.api.SuiteModule``), or ``default``
    (also for a suite name that no package provides)."""
    if suite not in _suite_sources():
        return default
    return getattr(suite_module(suite), name, default)


def hooks(name: str) -> list[tuple[str, Any]]:
    """(suite, export) for every discovered suite that exports ``name``, in suite order."""
    found = [(suite, suite_hook(suite, name)) for suite in discovered_suites()]
    return [(suite, hook) for suite, hook in found if hook is not None]


def data_directories() -> list[Path]:
    """Where the suites read data from (every suite's ``data_directories()``) and the
    directories of suites outside this checkout: what a sandboxed worker may read besides
    the repository and the Python installation."""
    found = [Path(entry).resolve() for entry in os.environ.get(SUITE_PATH_ENV, "").split(
        os.pathsep) if entry]
    for _, hook in hooks("data_directories"):
        found += [Path(p).resolve() for p in hook()]
    return list(dict.fromkeys(found))


def prepare(tasks: list[Task], budget: str) -> None:
    """Let each task make what its runs read at ``budget`` (``prepare``: generated data sets
    drawn into their cache), here, before any sandboxed worker needs them."""
    for task in tasks:
        hook = getattr(task, "prepare", None)
        if hook is not None:
            hook(budget)


def demo_plan() -> list[str]:
    """The task selectors ``lsb demo`` runs: every suite's ``DEMO_TASKS``, in suite order."""
    return [selector for _, selectors in hooks("DEMO_TASKS") for selector in selectors]


def plot_labels() -> dict[str, str]:
    """Every suite's ``PLOT_LABELS``: axis labels of the quantities its tasks record."""
    labels: dict[str, str] = {}
    for suite in available_suites():
        labels.update(suite_hook(suite, "PLOT_LABELS", {}))
    return labels


def task_axis(task_name: str) -> tuple[str, float, str] | None:
    """Where a task sits on its suite's scaling axis (``SuiteModule.task_axis``), if anywhere."""
    suite = task_name.split("/", 1)[0]
    if suite not in _suite_sources():
        return None
    hook = suite_hook(suite, "task_axis")
    return hook(task_name) if hook is not None else None


@functools.cache
def all_tasks() -> list[Task]:
    """Every task of every suite, suite by suite, in each suite's order."""
    tasks: list[Task] = []
    for suite in available_suites():
        for task in suite_module(suite).tasks():
            if task.suite != suite or not task.name.startswith(f"{suite}/"):
                raise ValueError(
                    f"task {task.name!r} of suite {suite!r} must have "
                    f"suite={suite!r} and a name starting with {suite + '/'!r}"
                )
            tasks.append(task)
    names = [t.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"task names must be unique; repeated: {duplicates}")
    return tasks


@functools.cache
def variant_tasks() -> list[Task]:
    """Every suite's held-out variants (its optional ``variants()``): tasks that are never
    tuned on, each run with the configuration tuned on its ``tuned_on`` public task."""
    variants: list[Task] = []
    for suite, hook in hooks("variants"):
        public = {t.name: t for t in suite_module(suite).tasks()}
        for task in hook():
            tuned_on = getattr(task, "tuned_on", None)
            if task.suite != suite or not task.name.startswith(f"{suite}/"):
                raise ValueError(f"variant {task.name!r} of suite {suite!r} must have "
                                 f"suite={suite!r} and a name starting with {suite + '/'!r}")
            if task.name in public:
                raise ValueError(f"variant {task.name!r} has the name of a public task")
            if tuned_on not in public:
                raise ValueError(f"variant {task.name!r} is tuned on {tuned_on!r}, which is "
                                 f"no public task of suite {suite!r}")
            variants.append(task)
    names = [t.name for t in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"variant names must be unique; repeated: {duplicates}")
    return variants


def variants_for(tasks: list[Task]) -> list[Task]:
    """The held-out variants tuned on any of ``tasks``."""
    names = {t.name for t in tasks}
    return [v for v in variant_tasks() if v.tuned_on in names]


def clear_cache() -> None:
    """Forget discovered suites and tasks (after ``$LSB_SUITE_PATH`` changes)."""
    for cached in (_suite_sources, suite_module, all_tasks, variant_tasks):
        cached.cache_clear()


def missing_data(task: Task, budget: str) -> str | None:
    """Why ``task`` cannot run at ``budget`` here (its data files are absent), or None.

    Tasks without a ``missing_data`` method need no files.
    """
    check = getattr(task, "missing_data", None)
    return None if check is None else check(budget)


def get_task(name: str) -> Task:
    """The task (public or held-out variant) called ``name``; ``KeyError`` with the closest
    names otherwise."""
    tasks = {t.name: t for t in all_tasks() + variant_tasks()}
    if name in tasks:
        return tasks[name]
    close = difflib.get_close_matches(name, tasks, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `lsb list` shows all tasks"
    raise KeyError(f"no task named {name!r}{hint}")


def tasks_for(selectors: list[str]) -> list[Task]:
    """Tasks picked by suite names, task names or globs over task names, in order, once each.

    A selector that picks nothing raises ``ValueError``.
    """
    tasks = all_tasks()
    picked: dict[str, Task] = {}
    for selector in selectors:
        matches = [
            t for t in tasks
            if selector in (t.suite, t.name) or fnmatch.fnmatchcase(t.name, selector)
        ]
        if not matches:
            suites = sorted({t.suite for t in tasks})
            raise ValueError(
                f"{selector!r} matches no suite ({', '.join(suites) or 'none installed'}) "
                "and no task; `lsb list` shows all tasks"
            )
        for task in matches:
            picked.setdefault(task.name, task)
    return list(picked.values())


def builtin_optimizer_paths() -> dict[str, Path]:
    """Built-in optimizer files by name (the file's stem), sorted by name."""
    return {
        path.stem: path
        for path in sorted(OPTIMIZERS_DIR.glob("*.py"))
        if not path.name.startswith("_")
    }


def resolve_optimizer(name_or_path: str) -> Path:
    """A built-in optimizer's file by name, or a submission file by path."""
    builtins = builtin_optimizer_paths()
    if name_or_path in builtins:
        return builtins[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".py" and path.is_file():
        return path
    close = difflib.get_close_matches(name_or_path, builtins, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ValueError(
        f"{name_or_path!r} is neither a built-in optimizer{hint} nor a .py file; "
        f"built-ins: {', '.join(builtins) or 'none'}"
    )

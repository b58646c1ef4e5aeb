"""Where tasks and built-in optimizers come from.

Each suite is a package ``suites/<suite>/`` whose ``tasks()`` returns its tasks. A suite
whose package does not exist is absent from the registry; one that exists but fails to
import is an error. Built-in optimizers are the files ``suites/optimizers/*.py`` (files
starting with ``_`` are shared helpers, not optimizers).
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib
import importlib.util
from pathlib import Path

from suites.api import Task

SUITE_NAMES: tuple[str, ...] = ("chain", "valley", "lra")
OPTIMIZERS_DIR = Path(__file__).resolve().parent / "optimizers"


def available_suites() -> list[str]:
    """The suites whose package exists, in the canonical order."""
    return [s for s in SUITE_NAMES if importlib.util.find_spec(f"suites.{s}") is not None]


@functools.cache
def all_tasks() -> list[Task]:
    """Every task of every available suite, suite by suite, in each suite's order."""
    tasks: list[Task] = []
    for suite in available_suites():
        try:
            module = importlib.import_module(f"suites.{suite}")
        except Exception as err:
            raise ImportError(f"suite package suites.{suite} exists but failed to import: {err}") \
                from err
        for task in module.tasks():
            if task.suite != suite or not task.name.startswith(f"{suite}/"):
                raise ValueError(
                    f"task {task.name!r} of suite package suites.{suite} must have "
                    f"suite={suite!r} and a name starting with {suite + '/'!r}"
                )
            tasks.append(task)
    names = [t.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"task names must be unique; repeated: {duplicates}")
    return tasks


def missing_data(task: Task, budget: str) -> str | None:
    """Why ``task`` cannot run at ``budget`` here (its data files are absent), or None.

    Tasks without a ``missing_data`` method need no files.
    """
    check = getattr(task, "missing_data", None)
    return None if check is None else check(budget)


def get_task(name: str) -> Task:
    """The task called ``name``; ``KeyError`` with the closest names otherwise."""
    tasks = {t.name: t for t in all_tasks()}
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

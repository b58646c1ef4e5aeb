"""Loading and validating submission files.

A submission is a Python file that defines ``name``, ``search_space``, ``lr_key`` and
``build(param_groups, **hparams)`` (see ``suites.api``), its declarations written as
literals. ``describe_submission`` reads them from the file's text without running it:
that is all the sweep's driver ever knows of a submission, so nothing the file does when
it runs can change what the driver runs. ``load_submission`` imports it and checks the
same attributes (in a training worker, or a validating one: ``suites.validation``).

Every problem is reported as ``file:line: what is wrong. How to fix it.``
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import operator
import re
import sys
import traceback
import types
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from suites.api import MAX_CONFIGS, Submission
from suites.results import file_hash
from suites.search_space import check_value, expand_search_space

#: A submission's name is a directory name in the results store and a URL part on the site.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: What a submission's ``schedule`` may say.
SCHEDULES = ("task", "own")


@dataclass(frozen=True)
class SubmissionProblem:
    """One thing wrong with a submission file, located at a line of it."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class InvalidSubmission(ValueError):
    """A submission file that cannot be run; ``problems`` says where and why."""

    def __init__(self, problems: list[SubmissionProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def source_hash(path: str | Path) -> str:
    """Identity of a submission's code (``suites.results.file_hash`` of its bytes)."""
    return file_hash(Path(path).read_bytes())


# --------------------------------------------------------------------------- loading


def load_submission(path: str | Path) -> Submission:
    """Import a submission file and check its attributes; raises ``InvalidSubmission``."""
    path = Path(path)
    packages, problems = dependencies(path)
    if problems:  # before the import, which would fail on a missing package
        raise InvalidSubmission(problems)
    module, problems = _import_file(path)
    if module is None:
        raise InvalidSubmission(problems)
    submission, problems = _check_attributes(path, module, packages)
    if problems:
        raise InvalidSubmission(problems)
    return submission


#: The platform every run has: recorded in each run's environment, not in its key.
PLATFORM_DISTRIBUTIONS = frozenset({"torch", "numpy", "triton", "landscapebench"})


def dependencies(path: Path) -> tuple[dict[str, str], list[SubmissionProblem]]:
    """The resolved versions of what a file requires (``requires``, PEP 508 strings) and
    of the installed distributions it imports at top level, read without running it;
    problems where a requirement is missing or not satisfied, with the pip command.
    """
    where = str(path)
    try:
        tree = ast.parse(path.read_bytes(), filename=where)
    except (OSError, SyntaxError, ValueError):
        return {}, []  # the import reports it, with the line
    requires, line = (), 0
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "requires" for t in node.targets):
            line = node.lineno
            try:
                requires = ast.literal_eval(node.value)
            except ValueError:
                return {}, [SubmissionProblem(where, line, "`requires` must be a literal list "
                                                           "of strings, e.g. "
                                                           '["schedulefree==1.4.1"].')]
    if isinstance(requires, str) or not all(isinstance(r, str) for r in requires):
        return {}, [SubmissionProblem(where, line, f"`requires` must be a list of PEP 508 "
                                                   f"strings, got {requires!r}.")]
    versions: dict[str, str] = {}
    problems = []
    for text in requires:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as err:
            problems.append(SubmissionProblem(where, line, f"requires {text!r} is not a PEP 508 "
                                                           f"requirement ({err})."))
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or not requirement.specifier.contains(installed, prereleases=True):
            found = f"{requirement.name} {installed} is installed" if installed else \
                f"{requirement.name} is not installed"
            problems.append(SubmissionProblem(
                where, line, f"requires {text!r}, but {found}. Install it: "
                             f"pip install '{text}'"))
            continue
        versions[canonicalize_name(requirement.name)] = installed
    distributions = metadata.packages_distributions()
    for node in tree.body:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and \
            not node.level else []
        for name in names:
            for dist in distributions.get(name.split(".")[0], []):
                dist = canonicalize_name(dist)
                if dist not in PLATFORM_DISTRIBUTIONS and dist not in versions:
                    try:
                        versions[dist] = metadata.version(dist)
                    except metadata.PackageNotFoundError:
                        pass
    return dict(sorted(versions.items())), problems


def _import_file(path: Path) -> tuple[Any, list[SubmissionProblem]]:
    where = str(path)
    if not path.is_file():
        return None, [SubmissionProblem(where, 0, "no such file: check the path")]
    if path.suffix != ".py":
        return None, [SubmissionProblem(where, 0, "a submission is a Python file: name it *.py")]
    digest = source_hash(path)
    module_name = f"lsb_submission_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name], []
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    module.__lsb_source_hash__ = digest
    sys.modules[module_name] = module  # dataclasses and pickling look classes up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        del sys.modules[module_name]
        return None, [
            SubmissionProblem(where, err.lineno or 0, f"syntax error: {err.msg}. Fix the syntax.")
        ]
    except (Exception, SystemExit) as err:  # anything the file raises is its problem
        del sys.modules[module_name]
        if isinstance(err, ImportError):
            fix = (
                f"The module {err.name or ''} is not importable here: use torch, numpy and the "
                "standard library, or install the dependency"
            )
        else:
            fix = "The file runs top to bottom on import; fix the statement at this line"
        return None, [
            SubmissionProblem(
                where,
                _line_in_file(err, path),
                f"importing the file raised {type(err).__name__}: {err}. {fix}.",
            )
        ]
    return module, []


#: What a submission declares at top level, as literals: the leaderboard reads these from
#: the file's text (``describe_submission``) and never from a process that ran the file.
DECLARED = ("name", "lr_key", "search_space", "max_configs", "create_graph", "schedule",
            "defaults", "requires")
_NUMBER_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                     ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv,
                     ast.Mod: operator.mod, ast.Pow: operator.pow}


def _constant(node: ast.AST) -> Any:
    """The value of a literal, where numbers may be written as arithmetic on numbers
    (``0.125 ** 0.5``); ``ValueError`` for anything that would need running code."""
    if isinstance(node, ast.BinOp) and type(node.op) in _NUMBER_OPERATORS:
        left, right = _constant(node.left), _constant(node.right)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in (left, right)):
            raise ValueError("arithmetic on something other than numbers")
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("an exponent above 64")
        return _NUMBER_OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _constant(node.operand)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError("a sign on something other than a number")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_constant(e) for e in node.elts]
        return values if isinstance(node, ast.List) else tuple(values)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("a ** expansion")
        return {_constant(k): _constant(v) for k, v in zip(node.keys, node.values,
                                                            strict=True)}
    if isinstance(node, ast.Constant):
        return node.value
    raise ValueError(f"{type(node).__name__.lower()} expression")


def read_declarations(path: Path) -> tuple[dict[str, Any], set[str], str,
                                           list[SubmissionProblem]]:
    """A file's declarations as written (the last top-level assignment of each name of
    ``DECLARED``), the names it defines at top level, its docstring, and a problem for each
    declaration that is not a literal. Nothing of the file runs."""
    where = str(path)
    try:
        tree = ast.parse(path.read_bytes(), filename=where)
    except SyntaxError as err:
        return {}, set(), "", [SubmissionProblem(where, err.lineno or 0,
                                                 f"syntax error: {err.msg}. Fix the syntax.")]
    except (OSError, ValueError) as err:
        return {}, set(), "", [SubmissionProblem(where, 0, f"not readable: {err}.")]
    values: dict[str, Any] = {}
    problems = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in DECLARED:
                try:
                    values[target.id] = _constant(node.value)
                except (ValueError, ArithmeticError) as err:
                    problems.append(SubmissionProblem(
                        where, node.lineno,
                        f"`{target.id}` must be written as a literal (numbers, strings, "
                        f"lists and dicts; arithmetic on numbers is fine), not a {err}: the "
                        "leaderboard reads it from the file without running it. Write the "
                        "values out (a range {\"min\": …, \"max\": …, \"scale\": \"log\"} "
                        "expands into evenly spaced values)."))
                    values.pop(target.id, None)
    return values, set(_definition_lines(path)), ast.get_docstring(tree) or "", problems


def describe_submission(path: str | Path) -> Submission:
    """A submission as its file declares it, read without running it (``build`` is
    ``None``): what the sweep's driver uses. Raises ``InvalidSubmission``."""
    path = Path(path)
    declared, defined, docstring, problems = read_declarations(path)
    packages, missing = dependencies(path)
    problems += missing
    if problems:
        raise InvalidSubmission(problems)
    namespace = types.SimpleNamespace(
        **declared, __doc__=docstring, __lsb_source_hash__=source_hash(path),
        **({"build": _DeclaredBuild()} if "build" in defined else {}))
    submission, problems = _check_attributes(path, namespace, packages, static=True)
    if problems:
        raise InvalidSubmission(problems)
    # Workers load the file from another working directory: give them the whole path.
    return dataclasses.replace(submission, path=str(path.resolve()))


class _DeclaredBuild:
    """Stands for a ``build`` the file defines, when the file is read without running it."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a submission read from its text cannot build an optimizer")


def declaration_mismatches(described: Submission, loaded: Submission) -> list[str]:
    """The declarations whose value when the file runs differs from the one it is written
    with (a file that rewrites them at import)."""
    return [name for name in ("name", "lr_key", "search_space", "max_configs", "create_graph",
                              "schedule", "defaults", "requires")
            if getattr(described, name) != getattr(loaded, name)]


def _check_attributes(path: Path, module: Any, packages: dict[str, str], *,
                      static: bool = False) -> tuple[Submission | None, list[SubmissionProblem]]:
    lines = _definition_lines(path)
    where = str(path)
    problems: list[SubmissionProblem] = []

    def problem(attr: str, message: str) -> None:
        problems.append(SubmissionProblem(where, lines.get(attr, 1), message))

    missing = object()
    name = getattr(module, "name", missing)
    if name is missing:
        problem("name", 'no `name` defined. Add a line such as `name = "my-optimizer"`.')
    elif not isinstance(name, str) or not NAME_PATTERN.match(name):
        problem(
            "name",
            f"`name` must be a string of letters, digits, '.', '_' or '-' (at most 64), "
            f"got {name!r}. It names a results directory; rename it accordingly.",
        )

    lr_key = getattr(module, "lr_key", missing)
    if lr_key is missing:
        problem(
            "lr_key",
            'no `lr_key` defined. Add `lr_key = "lr"` (the step-size hyperparameter) '
            "or `lr_key = None` if the optimizer has none.",
        )
    elif lr_key is not None and not isinstance(lr_key, str):
        problem("lr_key", f"`lr_key` must be a string or None, got {lr_key!r}.")

    max_configs = getattr(module, "max_configs", MAX_CONFIGS)
    if not isinstance(max_configs, int) or isinstance(max_configs, bool) or max_configs < 1:
        problem("max_configs", f"`max_configs` must be a positive integer, got {max_configs!r}.")
        max_configs = MAX_CONFIGS

    space = getattr(module, "search_space", missing)
    configs: list[dict] = []
    if space is missing:
        problem(
            "search_space",
            'no `search_space` defined. Add e.g. `search_space = {"lr": [1e-3, 1e-2]}`.',
        )
    elif not isinstance(space, dict):
        problem("search_space", f"`search_space` must be a dict, got {type(space).__name__}.")
    else:
        try:
            configs = expand_search_space(space, max_configs)
        except ValueError as err:
            problem("search_space", f"{err}.")
        if isinstance(lr_key, str) and lr_key not in space:
            problem(
                "lr_key",
                f"lr_key = {lr_key!r} is not a key of search_space ({sorted(space)}). "
                "Add it to the search space or set lr_key = None.",
            )

    create_graph = getattr(module, "create_graph", False)
    if not isinstance(create_graph, bool):
        problem("create_graph", f"`create_graph` must be True or False, got {create_graph!r}.")

    schedule = getattr(module, "schedule", "task")
    if schedule not in SCHEDULES:
        problem("schedule", f"`schedule` must be \"task\" (the task's step-size schedule "
                            f"multiplies {lr_key!r}) or \"own\" (the optimizer schedules "
                            f"itself), got {schedule!r}.")

    defaults = getattr(module, "defaults", None)
    if defaults is not None:
        if not isinstance(defaults, dict):
            problem("defaults", f"`defaults` must be a dict of build's keyword arguments, got "
                                f"{type(defaults).__name__}.")
            defaults = None
        elif isinstance(space, dict) and set(defaults) != set(space):
            problem("defaults", f"`defaults` must give every search_space key and no other "
                                f"(search_space: {sorted(space)}, defaults: "
                                f"{sorted(defaults)}): the self-tuning track builds the "
                                "optimizer with them.")
        else:
            try:
                for key, value in defaults.items():
                    check_value(key, value)
            except ValueError as err:
                problem("defaults", f"`defaults`: {err}.")

    build = getattr(module, "build", missing)
    if build is missing:
        problem("build", "no `build` defined. Add `def build(param_groups, **hparams): ...` "
                         "returning a torch.optim.Optimizer.")
    elif not callable(build):
        problem("build", f"`build` must be a function, got {type(build).__name__}.")
    elif not static:
        for config in configs:
            try:
                inspect.signature(build).bind(object(), **config)
            except TypeError as err:
                problem(
                    "build",
                    f"build(param_groups, **{config}) does not match its signature ({err}). "
                    "Accept every search_space key as a keyword argument.",
                )
                break
            except ValueError:  # builtins without a signature cannot be checked up front
                break

    if problems:
        return None, problems
    return (
        Submission(
            name=name,
            description=inspect.cleandoc(module.__doc__ or ""),
            search_space=space,
            lr_key=lr_key,
            build=None if static else build,
            path=str(path),
            source_hash=module.__lsb_source_hash__,
            grid=tuple(configs),
            max_configs=max_configs,
            create_graph=create_graph,
            requires=tuple(getattr(module, "requires", ())),
            packages=packages,
            schedule=schedule,
            defaults=dict(defaults) if defaults is not None else None,
        ),
        [],
    )


def _definition_lines(path: Path) -> dict[str, int]:
    """Line of the last top-level definition of each name in the file."""
    lines: dict[str, int] = {}
    for node in ast.parse(path.read_bytes(), filename=str(path)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            lines[node.name] = node.lineno
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    lines[target.id] = node.lineno
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            lines[node.target.id] = node.lineno
    return lines


def _line_in_file(err: BaseException, path: Path) -> int:
    """The line of ``path`` closest to where ``err`` was raised (0 when it is not in it)."""
    target = str(path.resolve())
    line = 0
    for frame in traceback.extract_tb(err.__traceback__):
        if str(Path(frame.filename).resolve()) == target:
            line = frame.lineno or 0
    return line

"""Loading and validating submission files.

A submission is a Python file that defines ``name``, ``search_space``, ``lr_key`` and
``build(param_groups, **hparams)`` (see ``suites.api``). ``load_submission`` imports it
and checks those attributes; ``validate_submission`` additionally builds the optimizer
for every configuration on a tiny problem and takes one step with it. The CLI runs the
validation in a subprocess per file (``inspect_in_subprocess``), so that a file that
crashes, hangs or changes global state at import touches neither the sweep's process
nor another submission: the sweep's process never imports a submission.

Every problem is reported as ``file:line: what is wrong. How to fix it.``
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import json
import re
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from suites.api import MAX_CONFIGS, Submission
from suites.results import file_hash
from suites.search_space import expand_search_space
from suites.training import optimizer_param_groups, set_mode

#: A submission's name is a directory name in the results store and a URL part on the site.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Seconds ``validate_in_subprocess`` waits for the validating interpreter.
VALIDATION_TIMEOUT = 120.0


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


def _check_attributes(path: Path, module: Any, packages: dict[str, str]
                      ) -> tuple[Submission | None, list[SubmissionProblem]]:
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

    build = getattr(module, "build", missing)
    if build is missing:
        problem("build", "no `build` defined. Add `def build(param_groups, **hparams): ...` "
                         "returning a torch.optim.Optimizer.")
    elif not callable(build):
        problem("build", f"`build` must be a function, got {type(build).__name__}.")
    else:
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
            build=build,
            path=str(path),
            source_hash=module.__lsb_source_hash__,
            grid=tuple(configs),
            max_configs=max_configs,
            create_graph=create_graph,
            requires=tuple(getattr(module, "requires", ())),
            packages=packages,
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


# --------------------------------------------------------------------------- validation


def validate_submission(path: str | Path) -> list[SubmissionProblem]:
    """Everything wrong with a submission file; an empty list means it is ready to run.

    Beyond ``load_submission``'s checks (``requires`` included), builds the optimizer
    for every configuration on a tiny one-group problem, checks it is a
    ``torch.optim.Optimizer``, and takes one ``step(closure)`` with it (its closure builds
    a graph of the gradients where the file sets ``create_graph = True``).
    """
    path = Path(path)
    try:
        submission = load_submission(path)
    except InvalidSubmission as err:
        return err.problems
    build_line = _definition_lines(path).get("build", 1)
    for config in submission.configs():
        problem = _build_and_step(submission, config, build_line)
        if problem is not None:
            return [problem]
    return []


def _build_and_step(
    submission: Submission, config: dict[str, Any], build_line: int
) -> SubmissionProblem | None:
    """Build one configuration on a tiny one-group problem (named parameters, as most tasks
    give) and take one step. Tasks that ask for per-group step sizes (``lr_scale``) are
    checked where they run: an optimizer that refuses them fails those runs, with its
    own message."""
    path = Path(submission.path)
    generator = torch.Generator().manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(4, 3, generator=generator))
    bias = torch.nn.Parameter(torch.randn(3, generator=generator))
    groups = [{"params": [weight, bias], "param_names": ["weight", "bias"]}]
    try:
        optimizer = submission.build(
            optimizer_param_groups(groups, config, submission.lr_key), **config
        )
    except Exception as err:  # noqa: BLE001
        return SubmissionProblem(
            str(path), _line_in_file(err, path) or build_line,
            f"build(param_groups, **{config}) raised {type(err).__name__}: {err}. "
            "Fix build so it works for every configuration of the search space.",
        )
    if not isinstance(optimizer, torch.optim.Optimizer):
        return SubmissionProblem(
            str(path), build_line,
            f"build(param_groups, **{config}) returned {type(optimizer).__name__}, not a "
            "torch.optim.Optimizer. Return an optimizer built on param_groups.",
        )
    calls = 0

    def closure() -> torch.Tensor:
        nonlocal calls
        calls += 1
        optimizer.zero_grad()
        loss = (weight.sum(1) + bias.sum()).pow(2).mean() + 1.0
        loss.backward(create_graph=submission.create_graph)
        return loss

    try:
        set_mode(optimizer, "train")  # as the runner does (the schedule-free convention)
        optimizer.step(closure)
    except Exception as err:  # noqa: BLE001
        return SubmissionProblem(
            str(path), _line_in_file(err, path) or build_line,
            f"optimizer.step(closure) with {config} raised {type(err).__name__}: {err}. "
            "The runner calls step(closure); the closure zeroes the gradients, computes "
            "the loss, backpropagates and returns the loss.",
        )
    if calls == 0:
        return SubmissionProblem(
            str(path), build_line,
            f"optimizer.step(closure) with {config} never called the closure, so no "
            "gradient was computed. Call it: `loss = closure()` under torch.enable_grad().",
        )
    return None


def inspect_in_subprocess(
    paths: Sequence[str | Path], timeout: float = VALIDATION_TIMEOUT
) -> list[tuple[Submission | None, list[SubmissionProblem]]]:
    """``validate_submission`` of files in one fresh interpreter: for each file, its
    description (a ``Submission`` whose ``build`` is ``None``: its code never runs in the
    caller's process) or its problems.

    Files validated together share that interpreter, so give each untrusted file a call
    of its own: then whatever it does at import cannot touch another file's validation.
    The answers come back in a report file, not on standard output, so a file may print
    what it likes. A file that crashes or hangs at import cannot hurt the caller; the
    subprocess is reported as a problem of the files if it exits without a report or
    runs past ``timeout``.
    """
    paths = [str(p) for p in paths]
    where = ", ".join(paths)
    with tempfile.TemporaryDirectory(prefix="lsb-validate-") as scratch:
        report = Path(scratch) / "report.json"
        command = [sys.executable, "-m", "suites.submission", "validate", "--report",
                   str(report), *paths]
        try:
            completed = subprocess.run(command, capture_output=True, text=True,
                                       timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return [(None, [SubmissionProblem(
                where, 0,
                f"validation did not finish within {timeout:.0f} s. Importing the file and "
                "building the optimizer must be quick; move long work out of module level.",
            )])]
        try:
            answers = json.loads(report.read_text())["files"]
        except (OSError, ValueError, KeyError):
            detail = [line for line in completed.stderr.strip().splitlines() if line.strip()]
            return [(None, [SubmissionProblem(
                where, 0,
                f"the validating process exited with code {completed.returncode} before it "
                f"reported ({detail[-1].strip() if detail else 'no message'}): the file ends "
                "its interpreter (os._exit, a crash at import). Run "
                f"`python -m suites.submission validate {' '.join(paths)}` to see the whole "
                "error.",
            )])]
    described = []
    for answer in answers:
        problems = [SubmissionProblem(**p) for p in answer["problems"]]
        info = answer["submission"]
        if problems or info is None:
            described.append((None, problems))
        else:
            info["grid"], info["requires"] = tuple(info["grid"]), tuple(info["requires"])
            described.append((Submission(build=None, **info), []))
    return described


def validate_in_subprocess(
    paths: Sequence[str | Path], timeout: float = VALIDATION_TIMEOUT
) -> list[SubmissionProblem]:
    """The problems of each file, each validated in an interpreter of its own."""
    return [p for path in paths for _, found in inspect_in_subprocess([path], timeout)
            for p in found]


def _description(submission: Submission) -> dict[str, Any]:
    """What ``inspect_in_subprocess`` sends back: every field but ``build``."""
    return {
        "name": submission.name, "description": submission.description,
        "search_space": submission.search_space, "lr_key": submission.lr_key,
        "path": submission.path, "source_hash": submission.source_hash,
        "grid": list(submission.grid), "max_configs": submission.max_configs,
        "create_graph": submission.create_graph, "requires": list(submission.requires),
        "packages": submission.packages,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m suites.submission",
        description="Check submission files: import, build the optimizer, take a step.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="validate submission files")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.add_argument("--report", type=Path, default=None, metavar="FILE",
                          help="write each file's problems and description as JSON to FILE")
    args = parser.parse_args(argv)
    if args.report is not None:
        files = []
        for path in args.paths:
            problems = validate_submission(path)
            described = None if problems else _description(load_submission(path))
            files.append({"path": path, "problems": [asdict(p) for p in problems],
                          "submission": described})
        args.report.write_text(json.dumps({"files": files}))
        return 2 if any(f["problems"] for f in files) else 0
    problems = [p for path in args.paths for p in validate_submission(path)]
    for p in problems:
        print(p)
    if not problems:
        for path in args.paths:
            submission = load_submission(path)
            print(
                f"{path}: ok: {submission.name!r}, {len(submission.configs())} configurations, "
                f"source {submission.source_hash}"
            )
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""A synthetic results store of N runs, made from the runs of a real one, for timing the
store and the site at scale: ``python -m bench.synthetic_store --out DIR --runs N``.

Copy 0 is the source's run files as they are (the first N of them, in path order, when N
is smaller); copy k > 0 is each of them again with its seed moved by k strides (tuning
seeds stay tuning seeds, evaluation seeds evaluation seeds), so every copy is a distinct
run: its own run key, its own path, its own digest. Everything but ``runs/`` (the kept
optimizer sources, the kernel figures) is copied as it is, so the optimizers resolve and
the site has its kernels page. The output is deterministic: the same source and N give
byte-identical files.

``bench`` sits below ``suites`` (it imports only ``kernels``), so the two rules a copy
must follow are restated here from ``suites.record``: the run key (``run_key``: sha256 of
the canonical JSON of the run's identity) and the document digest (``document_digest``).
``tests/test_synthetic_store.py`` reads every file it makes with ``suites.results``,
which flags a file whose key or digest does not follow the store's rules.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

#: Seeds at or above this are evaluation seeds (``suites.api.EVAL_SEED_OFFSET``).
EVAL_SEED_OFFSET = 1000
_SAFE_PART = re.compile(r"[^A-Za-z0-9_.-]")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def run_key(spec: dict[str, Any]) -> str:
    """``suites.record.run_key`` of a run file's ``spec`` (as the file stores it)."""
    optimizer = spec["optimizer"]
    identity: dict[str, Any] = {
        "task": spec["task"], "budget": spec["budget"], "optimizer": optimizer["name"],
        "source_hash": optimizer["source_hash"], "hparams": spec["hparams"],
        "seed": spec["seed"],
    }
    if optimizer.get("packages"):
        identity["packages"] = optimizer["packages"]
    if spec.get("track", "external") != "external":
        identity["track"] = spec["track"]
    return hashlib.sha256(_canonical(identity).encode()).hexdigest()[:16]


def document_digest(document: dict[str, Any]) -> str:
    """``suites.record.document_digest``: sha256 of the document without its digest."""
    content = {k: v for k, v in document.items() if k != "digest"}
    return "sha256:" + hashlib.sha256(_canonical(content).encode()).hexdigest()


def run_path(runs_dir: Path, spec: dict[str, Any], key: str) -> Path:
    """Where the store keeps a run (``suites.results.ResultStore.path_for``)."""
    parts = [_SAFE_PART.sub("_", p) for p in spec["task"].split("/") if p not in ("", ".", "..")]
    optimizer = _SAFE_PART.sub("_", spec["optimizer"]["name"])
    return runs_dir.joinpath(*parts, optimizer, f"{key}.json")


def seed_stride(seeds: list[int]) -> int:
    """How far copy k moves a seed per k: past every seed of the source, counted from the
    start of its range (tuning from 0, evaluation from ``EVAL_SEED_OFFSET``)."""
    return 1 + max((s - EVAL_SEED_OFFSET if s >= EVAL_SEED_OFFSET else s for s in seeds),
                   default=0)


def moved_copy(document: dict[str, Any], offset: int) -> dict[str, Any]:
    """``document`` with its seed moved by ``offset``, its run key and digest remade."""
    spec = {**document["spec"], "seed": document["spec"]["seed"] + offset}
    if (document["spec"]["seed"] < EVAL_SEED_OFFSET) != (spec["seed"] < EVAL_SEED_OFFSET):
        raise ValueError(f"seed {document['spec']['seed']} + {offset} crosses "
                         f"{EVAL_SEED_OFFSET}: fewer runs, or a source with fewer seeds")
    copy = {**document, "run_key": run_key(spec), "spec": spec}
    copy.pop("digest", None)
    copy["digest"] = document_digest(copy)
    return copy


def make_store(source: Path, out: Path, runs: int) -> int:
    """Write a store of ``runs`` runs made from ``source`` into ``out`` (which must not
    exist, or be empty); returns the number of run files written."""
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"--out {out} is not empty: name a new directory")
    files = sorted(p for p in (source / "runs").rglob("*.json") if p.is_file()
                   and not p.is_symlink())
    if not files:
        raise SystemExit(f"no run files under {source / 'runs'}")
    out.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.name == "runs" or entry.name.startswith("."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, out / entry.name, symlinks=True)
        elif entry.is_file() and not entry.is_symlink():
            shutil.copy2(entry, out / entry.name)
    documents: list[tuple[Path, dict[str, Any]]] = []
    written = 0
    for path in files[:runs]:  # copy 0: the files as they are
        data = path.read_bytes()
        target = out / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        documents.append((path, json.loads(data)))
        written += 1
    stride = seed_stride([d["spec"]["seed"] for _, d in documents])
    seen: set[Path] = set()
    copy = 1
    while written < runs:
        for _, document in documents:
            if written >= runs:
                break
            moved = moved_copy(document, copy * stride)
            target = run_path(out / "runs", moved["spec"], moved["run_key"])
            if target in seen or target.exists():
                raise SystemExit(f"copy {copy} of a run lands on {target}, which exists")
            seen.add(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            # As ``ResultStore.save`` writes a run: indent 1, no non-finite numbers.
            target.write_text(json.dumps(moved, indent=1, allow_nan=False))
            written += 1
        copy += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.synthetic_store",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="the new store's directory")
    parser.add_argument("--runs", required=True, type=int, help="how many run files")
    parser.add_argument("--source", default=Path("results"), type=Path,
                        help="the store whose runs are copied (default: results)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    written = make_store(args.source, args.out, args.runs)
    print(f"{args.out}: {written} run files made from {args.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

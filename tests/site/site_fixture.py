"""A results directory for the site tests, written through the real results store.

Three suites (chain, valley, lra), three optimizers plus one with a hostile name and
docstring, tuning and evaluation runs with several seeds, held-out variant runs (one
variant task per suite, ``VARIANTS``), a diverged run, a corrupt file, a file of an
unknown schema version and a pytest-benchmark file for the kernels page. Scores are made
up but shaped like the real suites' (SGD's escape time grows with depth, Adam's does not).
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np

from suites.api import Metric
from suites.record import MetricRecord, OptimizerRef, RunResult, RunSpec
from suites.results import ResultStore
from suites.submission import source_hash

HOSTILE_NAME = "<script>alert('name')</script>"
HOSTILE_DOC = "Hostile <script>alert('doc')</script> optimizer & friends."

#: The registered metrics of the tasks the fixture names (scoring takes the registry's).
ESCAPE = Metric("evals_to_escape", higher_is_better=False, target=0.05,
                unit="gradient evaluations")
TRACE = Metric("hessian_trace", higher_is_better=False, unit="Tr ∇²f")
ACCURACY = Metric("test_accuracy", higher_is_better=True, unit="fraction",
                  select_by="val_accuracy")
CHAIN_DEPTHS = (4, 8, 16)
LRS = (0.01, 0.1)
EVAL_SEEDS = (1000, 1001, 1002)
#: Held-out variant task → its metric and each optimizer's score on it: every variant
#: orders the optimizers rmsprop, adam, sgd, the hostile one (best first).
VARIANTS = {
    "chain/depth-12-const": (ESCAPE, {"rmsprop": 40.0, "adam": 52.0, "sgd": 150.0,
                                      HOSTILE_NAME: 400.0}),
    "valley/widening-d200": (TRACE, {"rmsprop": 55.0, "adam": 62.0, "sgd": 100.0,
                                     HOSTILE_NAME: 120.0}),
    "lra/listops-len-120": (ACCURACY, {"rmsprop": 0.5, "adam": 0.45, "sgd": 0.35,
                                       HOSTILE_NAME: 0.13}),
}

OPTIMIZER_SOURCE = '''"""{doc}"""

import torch

name = {name!r}
search_space = {{"lr": [0.01, 0.1]}}
lr_key = "lr"


def build(param_groups, lr):
    return torch.optim.SGD(param_groups, lr=lr)
'''


def write_optimizer(directory: Path, stem: str, name: str, doc: str) -> tuple[Path, str]:
    path = directory / f"{stem}.py"
    path.write_text(OPTIMIZER_SOURCE.format(doc=doc, name=name))
    return path, source_hash(path)


def chain_score(optimizer: str, depth: int, lr: float, seed: int) -> float:
    base = {"sgd": 3.0 * 2 ** (depth / 2), "adam": 40.0 + depth, "rmsprop": 35.0 + 2 * depth,
            HOSTILE_NAME: 400.0}[optimizer]
    if optimizer == "sgd" and depth == 16:
        return math.inf  # never escapes within the budget
    return base * (1.0 if lr == 0.1 else 1.7) * (1.0 + 0.03 * (seed % 7))


def make_result(task: str, metric: Metric, optimizer: str, path: Path, digest: str,
                lr: float, seed: int, phase: str, score: float, status: str = "ok",
                steps: int = 200) -> RunResult:
    rng = np.random.default_rng(zlib.crc32(f"{task}|{optimizer}|{lr}|{seed}".encode()))
    n = steps if math.isfinite(score) and metric is not ESCAPE else int(min(score, steps))
    n = max(n, 5)
    loss = list(0.5 * np.exp(-np.linspace(0, 6, n) * (1 + rng.uniform(0, 0.2))) + 1e-4)
    curve: dict[str, list] = {"step": list(range(1, n + 1)), "loss": loss}
    if status == "diverged":
        loss[-1] = math.inf
    eval_steps = [s for s in range(20, n + 1, 20)] or [n]
    curve["eval_step"] = eval_steps
    if metric is TRACE:
        curve["eval_hessian_trace"] = list(100 - 30 * np.linspace(0, 1, len(eval_steps))
                                           * (1 if optimizer != "sgd" else -0.3))
        curve["eval_u_sq_norm"] = list(np.asarray(curve["eval_hessian_trace"]) - 1)
    if metric is ACCURACY:
        curve["eval_accuracy"] = list(np.linspace(0.1, score if math.isfinite(score) else 0.1,
                                                  len(eval_steps)))
    spec = RunSpec(task=task, budget="quick",
                   optimizer=OptimizerRef(name=optimizer, source_hash=digest, path=str(path),
                                          lr_key="lr"),
                   hparams={"lr": lr}, seed=seed, phase=phase)
    curve["grad_evals"] = list(curve["step"])
    return RunResult(
        spec=spec, status=status, metrics={metric.name: score}, score=score, steps_run=n,
        grad_evals=n, curve=curve, time_per_step=1e-4 * (2 if optimizer == "adam" else 1),
        wall_time=0.5, state_bytes=0 if optimizer == "sgd" else 256,
        env={"device": "cpu: test", "machine": "cpu-test"}, suite=task.split("/", 1)[0],
        metric=MetricRecord.of(metric), param_bytes=128,
    )


def write_fixture(root: Path, held_out: bool = True) -> Path:
    """The fixture's results directory at ``root``; ``held_out``: with the variants' runs."""
    store = ResultStore(root)
    sources = root.parent / "optimizers"
    sources.mkdir(exist_ok=True)
    optimizers = {
        name: write_optimizer(sources, stem, name, doc)
        for stem, name, doc in (
            ("sgd", "sgd", "Plain SGD for the site tests."),
            ("adam", "adam", "Adam for the site tests.\n\nA second paragraph."),
            ("rmsprop", "rmsprop", "RMSprop for the site tests."),
            ("hostile", HOSTILE_NAME, HOSTILE_DOC),
        )
    }

    def run_task(task: str, metric: Metric, score) -> None:
        for optimizer, (path, digest) in optimizers.items():
            tuned = {lr: score(optimizer, lr, 0) for lr in LRS}
            for lr, value in tuned.items():
                status = "ok" if math.isfinite(value) else "diverged"
                store.save(make_result(task, metric, optimizer, path, digest, lr, 0, "tune",
                                       value, status))
            oriented = {lr: (-v if metric.higher_is_better else v) for lr, v in tuned.items()}
            best = min(LRS, key=lambda lr: (oriented[lr], lr))
            for seed in EVAL_SEEDS:
                value = score(optimizer, best, seed)
                status = "ok" if math.isfinite(value) else "diverged"
                store.save(make_result(task, metric, optimizer, path, digest, best, seed,
                                       "eval", value, status))

    for depth in CHAIN_DEPTHS:
        run_task(f"chain/depth-{depth}-const", ESCAPE,
                 lambda o, lr, s, d=depth: chain_score(o, d, lr, s))

    def trace(optimizer: str, lr: float, seed: int) -> float:
        if optimizer == "sgd" and lr == 0.1:
            return math.inf  # the diverged run
        return {"sgd": 100.0, "adam": 60.0, "rmsprop": 70.0, HOSTILE_NAME: 90.0}[optimizer] \
            * (1 + 0.05 * (seed % 5))

    run_task("valley/widening", TRACE, trace)

    def accuracy(optimizer: str, lr: float, seed: int) -> float:
        # The hostile optimizer stays at chance (the 13% majority class of the quick split).
        return {"sgd": 0.35, "adam": 0.5, "rmsprop": 0.45, HOSTILE_NAME: 0.13}[optimizer] \
            - (0.05 if lr == 0.01 else 0.0) + 0.01 * (seed % 3)

    run_task("lra/listops", ACCURACY, accuracy)

    for task, (metric, scores) in VARIANTS.items() if held_out else ():
        for optimizer, (path, digest) in optimizers.items():
            for seed in EVAL_SEEDS:
                value = scores[optimizer] * (1 + 0.01 * (seed % 3))
                store.save(make_result(task, metric, optimizer, path, digest, 0.1, seed,
                                       "held_out", value))

    broken = root / "runs" / "chain" / "broken.json"
    broken.write_text("{ this is not json")
    future = root / "runs" / "valley" / "future.json"
    future.write_text(json.dumps({"schema_version": 99, "task": "valley/widening"}))
    kernels = root / "kernels"
    kernels.mkdir(parents=True)
    (kernels / "gpu-host-20260101.json").write_text(json.dumps(benchmark_document()))
    (kernels / "truncated.json").write_text('{"benchmarks": [')
    return root


def benchmark_document() -> dict:
    """pytest-benchmark output as ``bench/test_*.py`` writes it (two kernels, two sizes)."""
    device = "NVIDIA H100 80GB HBM3"
    benchmarks = []
    impls_of = {"scan_fwd": ("chunked", "triton", "copy"), "adamw": ("ref", "triton")}
    for kernel, impls in impls_of.items():
        for size, scale in (((4, 256, 64), 1.0), ((16, 4096, 512), 40.0)):
            for impl in impls:
                seconds = scale * {"chunked": 4e-4, "triton": 5e-5, "copy": 4e-5, "ref": 3e-4}[impl]
                moved = int(1e8 * scale)
                gbps = moved / seconds / 1e9
                benchmarks.append({
                    "group": kernel,
                    "name": f"test_{kernel}[{impl}-{'x'.join(map(str, size))}]",
                    "params": {"case": f"{kernel}[{impl}]"},
                    "stats": {"min": seconds * 0.9, "max": seconds * 1.2, "mean": seconds,
                              "stddev": seconds * 0.05, "median": seconds, "rounds": 50},
                    "extra_info": {
                        "kernel": kernel, "impl": impl, "size": list(size),
                        "case": f"{kernel}[{impl}-{'x'.join(map(str, size))}]",
                        "reference": {"scan_fwd": "chunked", "adamw": "ref"}[kernel],
                        "bytes": moved, "device": device, "peak_gbps": 3350.0, "gbps": gbps,
                        "peak_fraction": gbps / 3350.0,
                    },
                })
    return {
        "machine_info": {"node": "gpu-host", "machine": "x86_64",
                         "cpu": {"brand_raw": "AMD EPYC 7763"}},
        "commit_info": {"id": "0123456789abcdef0123"},
        "benchmarks": benchmarks,
        "datetime": "2026-01-01T12:00:00",
        "version": "5.1.0",
    }

"""CPU timings of the reference optimizer steps against torch.optim, in one run.

    python -m kernels.optim.compare [--numel 16777216] [--tensors 1000] [--repeats 7]

Times, at ``numel`` fp32 parameters held in one tensor and in ``tensors`` equal tensors:
the reference AdamW (``kernels.optim.AdamW(backend="torch")``) against
``torch.optim.AdamW(foreach=True)``, and the reference NGN step against
``torch.optim.SGD(foreach=True)``. Also the host cost of the fused path's per-step
pointer table. Each figure is the median over ``repeats`` steps, the two optimizers of a
pair interleaved so that drift in machine load hits both alike. Single-threaded by
default (``--threads``): on a shared machine, thread pools make CPU timings noise.
"""

import argparse
import functools
import json
import statistics
import time

import torch

from kernels.optim import NGN, AdamW


def _params(numel: int, tensors: int) -> list[torch.nn.Parameter]:
    sizes = [numel // tensors + (i < numel % tensors) for i in range(tensors)]
    params = [torch.nn.Parameter(torch.randn(n)) for n in sizes]
    for p in params:
        p.grad = torch.randn_like(p)
    return params


def _median_pair(step_a, step_b, repeats: int) -> tuple[float, float]:
    step_a(), step_b()  # allocate state outside the timed steps
    times_a, times_b = [], []
    for _ in range(repeats):
        for step, times in ((step_a, times_a), (step_b, times_b)):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)


def _table_seconds(params: list[torch.Tensor], repeats: int) -> float:
    """Host CPU time (not wall time, which other processes inflate) to build the fused
    AdamW step's pointer table: addresses of p, g, m, v and the step count."""
    from kernels.optim.triton_optim import CHUNK, _table

    steps = [torch.zeros(()) for _ in params]
    columns = [params, [p.grad for p in params], params, params]
    times = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(10):
            _table(columns, torch.device("cpu"), CHUNK, (steps,))
        times.append((time.process_time() - start) / 10)
    return statistics.median(times)


def _compare_case(numel: int, count: int, repeats: int) -> list[dict]:
    params = _params(numel, count)
    ours = AdamW(params, lr=1e-3, backend="torch")
    theirs = torch.optim.AdamW(params, lr=1e-3, foreach=True)
    t_ours, t_theirs = _median_pair(ours.step, theirs.step, repeats)
    ngn = NGN(params, sigma=1.0, backend="torch")
    sgd = torch.optim.SGD(params, lr=1e-3, foreach=True)
    ngn_step = functools.partial(ngn.step, loss=torch.tensor(1.0))
    t_ngn, t_sgd = _median_pair(ngn_step, sgd.step, repeats)
    return [
        dict(case="adamw", tensors=count, ours_ms=1e3 * t_ours, torch_ms=1e3 * t_theirs),
        dict(case="ngn/sgd", tensors=count, ours_ms=1e3 * t_ngn, torch_ms=1e3 * t_sgd),
        dict(case="table", tensors=count, ours_ms=1e3 * _table_seconds(params, repeats)),
    ]


def compare(numel: int, tensors: int, repeats: int) -> list[dict]:
    return _compare_case(numel, 1, repeats) + _compare_case(numel, tensors, repeats)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=1 << 24)
    parser.add_argument("--tensors", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = compare(args.numel, args.tensors, args.repeats)
    print(f"{args.numel:,} fp32 parameters, {args.threads} thread(s), torch {torch.__version__}")
    labels = {
        "adamw": "reference AdamW vs torch AdamW(foreach)",
        "ngn/sgd": "reference NGN vs torch SGD(foreach)",
        "table": "fused-path pointer table (host CPU time)",
    }
    for row in rows:
        name = f"{labels[row['case']]}, {row['tensors']} tensor(s)"
        if "torch_ms" in row:
            ratio = row["ours_ms"] / row["torch_ms"]
            print(f"{name:62s} {row['ours_ms']:9.2f} ms / {row['torch_ms']:9.2f} ms = {ratio:.2f}x")
        else:
            print(f"{name:62s} {row['ours_ms']:9.3f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"numel": args.numel, "threads": args.threads, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

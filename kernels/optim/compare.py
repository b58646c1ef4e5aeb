"""CPU timings of this package's optimizer steps against torch.optim's fused ones, in one run.

    python -m kernels.optim.compare [--numel 16777216] [--tensors 1000] [--repeats 7]

Times, at ``numel`` fp32 parameters held in one tensor and in ``tensors`` equal tensors:
``kernels.optim.AdamW(backend="auto")`` against ``torch.optim.AdamW(fused=True)``
(target: ratio <= 1), and ``kernels.optim.NGN(backend="auto")`` against
``torch.optim.SGD(fused=True)`` (target: <= 1.5): two-pass (gradients set by hand), and
one-pass (``one_pass=True``, each step after a backward that wrote the gradients; the
hooks' cost in that backward is shown on its own line).
Also the host cost of the Triton path's per-step pointer table. Each figure is the
median over ``repeats`` steps, the two optimizers of a pair interleaved so that drift in
machine load hits both alike; the machine is printed with them. Single-threaded by
default (``--threads``): on a shared machine, thread pools make CPU timings noise.
"""

import argparse
import functools
import json
import statistics
import time

import torch

from bench.inputs import optim_params, split_evenly
from bench.timing import interleaved_median_seconds
from kernels.machine import device_name
from kernels.optim import NGN, AdamW


def _params(numel: int, tensors: int) -> list[torch.nn.Parameter]:
    return optim_params(split_evenly(numel, tensors))


def _median_pair(step_a, step_b, repeats: int, before=None) -> tuple[float, float]:
    """Median seconds of each step, in turn; ``before(step)`` runs untimed ahead of each.
    The warm-up call allocates the optimizers' state outside the timed steps."""
    a, b = interleaved_median_seconds([step_a, step_b], warmup=1, repeats=repeats,
                                      device="cpu", before=before)
    return a, b


def _one_pass_rows(numel: int, count: int, repeats: int) -> list[dict]:
    """NGN(one_pass=True) after a backward against SGD(fused) after the same backward
    (each on its own copy of the parameters), and what the hooks add to the backward."""
    ngn_params, sgd_params = _params(numel, count), _params(numel, count)
    inputs = [torch.randn_like(p) for p in ngn_params]
    ngn = NGN(ngn_params, sigma=1.0, backend="auto", one_pass=True)
    sgd = torch.optim.SGD(sgd_params, lr=1e-3, fused=True)

    def backward_of(params):
        def backward():
            for p in params:
                p.grad = None
            # d/dp (p·x) = x: the backward writes each gradient once, like a layer's.
            dots = [p.flatten() @ x.flatten() for p, x in zip(params, inputs, strict=True)]
            torch.stack(dots).sum().backward()

        return backward

    ngn_backward, sgd_backward = backward_of(ngn_params), backward_of(sgd_params)
    ngn_step = functools.partial(ngn.step, loss=torch.tensor(1.0))
    before = {ngn_step: ngn_backward, sgd.step: sgd_backward}
    t_ngn, t_sgd = _median_pair(ngn_step, sgd.step, repeats, lambda step: before[step]())
    if not ngn.last_step_one_pass:
        raise RuntimeError("NGN(one_pass=True) fell back to the two-pass norm")
    t_hooked, t_plain = _median_pair(ngn_backward, sgd_backward, repeats)
    return [
        dict(case="ngn1/sgd", tensors=count, ours_ms=1e3 * t_ngn, torch_ms=1e3 * t_sgd),
        dict(case="hooks", tensors=count, ours_ms=1e3 * (t_hooked - t_plain)),
    ]


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
    ours = AdamW(params, lr=1e-3, backend="auto")
    theirs = torch.optim.AdamW(params, lr=1e-3, fused=True)
    t_ours, t_theirs = _median_pair(ours.step, theirs.step, repeats)
    ngn = NGN(params, sigma=1.0, backend="auto")
    sgd = torch.optim.SGD(params, lr=1e-3, fused=True)
    ngn_step = functools.partial(ngn.step, loss=torch.tensor(1.0))
    t_ngn, t_sgd = _median_pair(ngn_step, sgd.step, repeats)
    return [
        dict(case="adamw", tensors=count, ours_ms=1e3 * t_ours, torch_ms=1e3 * t_theirs),
        dict(case="ngn/sgd", tensors=count, ours_ms=1e3 * t_ngn, torch_ms=1e3 * t_sgd),
        dict(case="table", tensors=count, ours_ms=1e3 * _table_seconds(params, repeats)),
        *_one_pass_rows(numel, count, repeats),
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
    machine = device_name(torch.device("cpu"))
    print(
        f"{machine}, {args.numel:,} fp32 parameters, {args.threads} thread(s), "
        f"torch {torch.__version__}, median of {args.repeats} steps"
    )
    labels = {
        "adamw": "AdamW(auto) vs torch AdamW(fused)",
        "ngn/sgd": "NGN(auto) vs torch SGD(fused)",
        "ngn1/sgd": "NGN(auto, one_pass) vs torch SGD(fused), after a backward",
        "hooks": "one_pass hooks' cost in that backward",
        "table": "Triton-path pointer table (host CPU time)",
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
            record = dict(machine=machine, torch=torch.__version__, numel=args.numel)
            record.update(threads=args.threads, repeats=args.repeats, rows=rows)
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()

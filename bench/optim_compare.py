"""CPU timings of this package's optimizer steps against torch.optim's fused ones, in one
run, and the host time of the fused (Triton) path's step.

    python -m bench.optim_compare [--numel 16777216] [--tensors 1000] [--repeats 7]
    python -m bench.optim_compare --host-time [--json results/kernels/host-time-cpu-2c.json]

Times, at ``numel`` fp32 parameters held in one tensor and in ``tensors`` equal tensors:
``kernels.optim.AdamW(backend="auto")`` against ``torch.optim.AdamW(fused=True)``
(target: ratio <= 1), and ``kernels.optim.NGN(backend="auto")`` against
``torch.optim.SGD(fused=True)`` (target: <= 1.3): two-pass (gradients set by hand), and
one-pass (``one_pass=True``, each step after a backward that wrote the gradients; the
hooks' cost in that backward is shown on its own line, and the step with it). Each
figure is the median over ``repeats`` steps, the two optimizers of a pair interleaved so
that drift in machine load hits both alike (each going first in half the repeats); the
machine is printed with them.
Single-threaded by default (``--threads``): on a shared machine, thread pools make CPU
timings noise.

``--host-time``: the host work of one ``AdamW`` / ``NGN`` step on the Triton backend
(CPU tensors; the kernels are not launched), for 10, 100 and 1,000 tensors: with the
step plan and its device tables kept (gradients in place, as in a CUDA graph or with
``zero_grad(set_to_none=False)``), with new gradient tensors before every step
(``zero_grad()``: their address row is rewritten), and with the plan built anew at every
step (lists, layout checks and tables), as every step did before plans were kept.
Median (and least) thread CPU time over ``--host-repeats`` steps.
The Triton launcher's own cost per launch (one per group and dtype) is not included: it
needs a GPU. ``--json`` writes the figures in pytest-benchmark's layout, which the
kernels page reads.
"""

import argparse
import contextlib
import datetime
import functools
import json
import os
import platform
import statistics
import subprocess
import time
from unittest import mock

import torch

from bench.counts import cpu_model
from bench.timing import interleaved_median_seconds
from kernels.inputs import optim_params, split_evenly
from kernels.machine import device_name, machine_label
from kernels.optim import NGN, AdamW

HOST_TIME_TENSORS = (10, 100, 1000)


def _params(numel: int, tensors: int) -> list[torch.nn.Parameter]:
    return optim_params(split_evenly(numel, tensors))


def _median_pair(step_a, step_b, repeats: int, before=None) -> tuple[float, float]:
    """Median seconds of each step, in turn; ``before(step)`` runs untimed ahead of each.
    Half the repeats run ``a`` first, half ``b`` first (the mean of the two medians), so
    that going first or second costs neither. The warm-up call allocates the optimizers'
    state outside the timed steps."""
    first = max(1, repeats // 2)
    ab = interleaved_median_seconds([step_a, step_b], warmup=1, repeats=first,
                                    device="cpu", before=before)
    ba = interleaved_median_seconds([step_b, step_a], warmup=0, repeats=max(1, repeats - first),
                                    device="cpu", before=before)
    return (ab[0] + ba[1]) / 2, (ab[1] + ba[0]) / 2


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
    hooks = t_hooked - t_plain
    return [
        dict(case="ngn1/sgd", tensors=count, ours_ms=1e3 * t_ngn, torch_ms=1e3 * t_sgd),
        dict(case="hooks", tensors=count, ours_ms=1e3 * hooks),
        dict(case="ngn1+hooks/sgd", tensors=count, ours_ms=1e3 * (t_ngn + hooks),
             torch_ms=1e3 * t_sgd),
    ]


def _compare_case(numel: int, count: int, repeats: int) -> list[dict]:
    params = _params(numel, count)
    ours = AdamW(params, lr=1e-3, backend="auto")
    theirs = torch.optim.AdamW(params, lr=1e-3, fused=True)
    t_ours, t_theirs = _median_pair(ours.step, theirs.step, repeats)
    ngn = NGN(params, sigma=1.0, backend="auto")
    sgd = torch.optim.SGD(params, lr=1e-3, fused=True)
    ngn_step = functools.partial(ngn.step, loss=torch.tensor(1.0))
    t_ngn, t_sgd = _median_pair(ngn_step, sgd.step, repeats)
    # The two-pass step's extra work alone: reading every gradient once more for ‖g‖².
    grads = [p.grad for p in params]
    norm = functools.partial(torch._foreach_norm, grads, 2, dtype=torch.float32)
    t_norm, t_sgd_again = _median_pair(norm, sgd.step, repeats)
    return [
        dict(case="adamw", tensors=count, ours_ms=1e3 * t_ours, torch_ms=1e3 * t_theirs),
        dict(case="ngn/sgd", tensors=count, ours_ms=1e3 * t_ngn, torch_ms=1e3 * t_sgd),
        dict(case="norm/sgd", tensors=count, ours_ms=1e3 * t_norm, torch_ms=1e3 * t_sgd_again),
        *_one_pass_rows(numel, count, repeats),
    ]


def compare(numel: int, tensors: int, repeats: int) -> list[dict]:
    return _compare_case(numel, 1, repeats) + _compare_case(numel, tensors, repeats)


# --------------------------------------------------------------------------- host time


class _NotLaunched:
    """Stands for a Triton kernel: ``kernel[grid](...)`` records nothing and runs nothing."""

    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


@contextlib.contextmanager
def _kernels_not_launched():
    from kernels.optim import triton_optim

    names = ("_adamw_kernel", "_sq_norm_kernel", "_ngn_kernel")
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(mock.patch.object(triton_optim, name, _NotLaunched()))
        yield


def _host_seconds(step, repeats: int, before=None) -> tuple[float, float]:
    """Median and least thread CPU time of ``step()`` (``before()`` untimed ahead of
    each): the host's own work, not the time other processes take the core away."""
    step()
    spent = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.thread_time()
        step()
        spent.append(time.thread_time() - start)
    return statistics.median(spent), min(spent)


def _host_rows(optimizer: str, count: int, repeats: int) -> list[dict]:
    params = optim_params([1024] * count)
    if optimizer == "adamw":
        opt = AdamW(params, lr=1e-3, backend="triton")
        step = opt.step
    else:
        opt = NGN(params, sigma=1.0, backend="triton")
        step = functools.partial(opt.step, loss=1.0)
    # Two sets of gradients, swapped in before each step: new tensors at new addresses.
    grad_sets = [[p.grad for p in params], [torch.randn_like(p) for p in params]]
    turn = iter(range(1 << 62))

    def new_grads():
        for p, g in zip(params, grad_sets[next(turn) % 2], strict=True):
            p.grad = g

    def forget_plan():  # the step then builds its lists and tables, as every step did
        opt._step_plan = None

    kept = _host_seconds(step, repeats)
    moved = _host_seconds(step, repeats, before=new_grads)
    rebuilt = _host_seconds(step, repeats, before=forget_plan)
    size = f"{count} tensors"
    kernel = f"{optimizer} step, host"
    return [
        dict(kernel=kernel, impl=impl, size=size, seconds=median, least=least)
        for impl, (median, least) in (
            ("plan kept", kept), ("new gradients", moved), ("plan built per step", rebuilt)
        )
    ]


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
        return out.stdout.strip()
    except OSError:
        return ""


def host_time(repeats: int) -> list[dict]:
    """The host-time rows: AdamW's and NGN's, for ``HOST_TIME_TENSORS`` tensors."""
    with _kernels_not_launched():
        return [row for optimizer in ("adamw", "ngn") for count in HOST_TIME_TENSORS
                for row in _host_rows(optimizer, count, repeats)]


def host_time_document(rows: list[dict], repeats: int) -> dict:
    """The rows in pytest-benchmark's JSON layout (``benchmarks`` with ``stats.median``
    and ``extra_info``), the machine named, speedups quoted against rebuilding."""
    cpu = torch.device("cpu")
    machine = dict(node=platform.node(), machine=platform.machine(), processor=cpu_model(),
                   cpu=dict(brand_raw=cpu_model(), count=os.cpu_count()),
                   label=machine_label(cpu), device=device_name(cpu))
    benchmarks = [
        dict(name=f"{r['kernel']}[{r['impl']}-{r['size']}]", group=r["kernel"],
             stats=dict(median=r["seconds"], min=r["least"], rounds=repeats),
             extra_info=dict(kernel=r["kernel"], impl=r["impl"], case=r["size"],
                             device=device_name(cpu), reference="plan built per step"))
        for r in rows
    ]
    return dict(
        machine_info=machine, commit_info=dict(id=_commit()),
        datetime=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        note=("host work of one step on the Triton backend, kernels not launched (the "
              "launcher's own cost needs a GPU); median (and least) thread CPU time; "
              "python -m bench.optim_compare --host-time"),
        torch=torch.__version__, benchmarks=benchmarks,
    )  # fmt: skip


def _print_host_time(rows: list[dict]) -> None:
    print(f"{device_name(torch.device('cpu'))} ({cpu_model()}), torch {torch.__version__}: "
          "host time of one step, Triton backend, kernels not launched")
    for row in rows:
        name = f"{row['kernel']}, {row['size']}, {row['impl']}"
        print(f"{name:52s} {1e6 * row['seconds']:9.1f} µs (least {1e6 * row['least']:.1f})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=1 << 24)
    parser.add_argument("--tensors", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--host-time", action="store_true",
                        help="time the Triton path's host work per step instead")
    parser.add_argument("--host-repeats", type=int, default=200)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.host_time:
        # CPU tensors take the Triton backend only under the interpreter (set before
        # triton is imported); no kernel runs.
        os.environ.setdefault("TRITON_INTERPRET", "1")
        rows = host_time(args.host_repeats)
        _print_host_time(rows)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(host_time_document(rows, args.host_repeats), f, indent=1)
                f.write("\n")
        return
    rows = compare(args.numel, args.tensors, args.repeats)
    machine = device_name(torch.device("cpu"))
    print(
        f"{machine} ({cpu_model()}), {args.numel:,} fp32 parameters, {args.threads} "
        f"thread(s), torch {torch.__version__}, median of {args.repeats} steps"
    )
    labels = {
        "adamw": "AdamW(auto) vs torch AdamW(fused)",
        "ngn/sgd": "NGN(auto) vs torch SGD(fused)",
        "norm/sgd": "its ‖g‖² pass alone (torch._foreach_norm) vs SGD(fused)",
        "ngn1/sgd": "NGN(auto, one_pass) step after a backward vs SGD(fused)",
        "hooks": "one_pass hooks' cost in that backward",
        "ngn1+hooks/sgd": "NGN(auto, one_pass) step + its hooks vs SGD(fused)",
    }
    for row in rows:
        name = f"{labels[row['case']]}, {row['tensors']} tensor(s)"
        if "torch_ms" in row:
            ratio = row["ours_ms"] / row["torch_ms"]
            print(f"{name:66s} {row['ours_ms']:8.2f} ms / {row['torch_ms']:8.2f} ms = {ratio:.2f}x")
        else:
            print(f"{name:66s} {row['ours_ms']:8.2f} ms")
    if args.json:
        with open(args.json, "w") as f:
            record = dict(machine=machine, processor=cpu_model(), torch=torch.__version__)
            record.update(numel=args.numel, threads=args.threads, repeats=args.repeats,
                          rows=rows)
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()

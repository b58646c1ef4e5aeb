"""pytest-benchmark timings of the cases in ``bench.cases``, one group per kernel and size.

``make bench`` writes the JSON to ``results/kernels/``; ``make test`` runs each case
once with ``--benchmark-disable`` as a smoke test of the harness.
"""

import pytest

from bench import cases

ROUNDS = {"cuda": 20, "cpu": 5}


@pytest.mark.parametrize("case", cases.cases(), ids=lambda c: c.name)
def test_kernel(benchmark, case, device):
    reason = cases.skip_reason(case, device)
    if reason:
        pytest.skip(reason)
    run = cases.build(case, device)
    benchmark.group = f"{case.kernel} {'x'.join(map(str, case.size))}"
    benchmark.pedantic(run, rounds=ROUNDS.get(device.type, 5), warmup_rounds=2, iterations=1)
    stats = getattr(benchmark, "stats", None)
    median = stats.stats.median if stats else None
    benchmark.extra_info.update(cases.extra_info(case, median, device))
    assert benchmark.extra_info["bytes"] > 0

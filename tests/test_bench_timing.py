"""bench.timing: the one timer of the kernel scripts."""

import time

import pytest
import torch

from bench.timing import interleaved_median_seconds, median_seconds


def test_median_is_robust_to_one_slow_call():
    delays = iter([0.0, 0.05, 0.002, 0.002, 0.002])  # warm-up, one outlier, three normal

    def call():
        time.sleep(next(delays))

    seconds = median_seconds(call, warmup=1, repeats=4, device="cpu")
    assert 0.002 <= seconds < 0.04


def test_warmup_calls_are_not_timed_and_counts_are_exact():
    calls = []
    median_seconds(lambda: calls.append(1), warmup=3, repeats=2, device="cpu")
    assert len(calls) == 5
    with pytest.raises(ValueError, match="repeats"):
        median_seconds(lambda: None, repeats=0, device="cpu")


def test_interleaved_calls_alternate_and_rank_by_cost():
    order = []

    def fast():
        order.append("fast")

    def slow():
        order.append("slow")
        time.sleep(0.003)

    t_fast, t_slow = interleaved_median_seconds([fast, slow], warmup=0, repeats=3, device="cpu")
    assert order == ["fast", "slow"] * 3
    assert t_slow > t_fast


def test_before_runs_untimed_ahead_of_every_timed_call():
    calls = []

    def step():
        calls.append("step")

    def before(fn):
        calls.append("before")
        time.sleep(0.05)  # not part of the timing

    (seconds,) = interleaved_median_seconds([step], warmup=1, repeats=2, device="cpu",
                                            before=before)
    assert calls == ["step", "before", "step", "before", "step"]
    assert seconds < 0.04


@pytest.mark.gpu
def test_cuda_timing_measures_the_queued_work():
    x = torch.randn(1 << 24, device="cuda")
    one = median_seconds(lambda: x.mul_(1.0), device="cuda")
    four = median_seconds(lambda: [x.mul_(1.0) for _ in range(4)], device="cuda")
    assert 2.5 * one < four < 6 * one


def test_cpu_timings_are_single_threaded_unless_told(monkeypatch):
    from bench.timing import set_cpu_threads

    before = torch.get_num_threads()
    try:
        set_cpu_threads("cpu")
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("LSB_BENCH_THREADS", "2")
        set_cpu_threads("cpu")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

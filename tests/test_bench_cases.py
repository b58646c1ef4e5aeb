"""The benchmark cases both harnesses time."""

import pytest
import torch

from bench import cases, timing

CPU = torch.device("cpu")


def test_bytes_model_per_kernel():
    assert cases.bytes_moved(cases.Case("scan_fwd", "chunked", (2, 3, 5))) == 16 * 30
    assert cases.bytes_moved(cases.Case("scan_fwdbwd", "chunked", (2, 3, 5))) == 40 * 30
    assert cases.bytes_moved(cases.Case("adamw", "ref", (3, 7))) == 28 * 21
    assert cases.bytes_moved(cases.Case("ngn", "ref", (3, 7))) == 16 * 21
    assert cases.bytes_moved(cases.Case("sgd", "torch_foreach", (3, 7))) == 12 * 21
    with pytest.raises(ValueError, match="unknown kernel"):
        cases.bytes_moved(cases.Case("nope", "ref", (1,)))


def test_subsets_cover_the_stated_sizes(monkeypatch):
    full = {c.size for c in cases.cases(["scan_fwd"], "full")}
    assert {T for _, T, _ in full} == {256, 1024, 4096, 16384}
    assert (16, 4096, 512) in full and 16 * 4096 * 512 == 2**25
    optim = set(cases.sizes("adamw", "full"))
    assert {(1, 1 << 20), (1, 1 << 24), (1, 1 << 27), (1000, 1 << 14)} == optim
    monkeypatch.setenv("LSB_BENCH", "quick")
    assert cases.subset() == "quick"
    monkeypatch.setenv("LSB_BENCH", "everything")
    with pytest.raises(ValueError, match="LSB_BENCH"):
        cases.subset()


def test_triton_cases_skip_on_cpu_with_reason():
    case = cases.Case("adamw", "triton", (1, 8))
    assert "CUDA" in cases.skip_reason(case, CPU)
    with pytest.raises(NotImplementedError, match="CUDA"):
        cases.build(case, CPU)


@pytest.mark.parametrize("kernel", list(cases.IMPLS))
def test_every_cpu_case_runs_and_changes_state(kernel):
    for impl in cases.IMPLS[kernel]:
        case = cases.Case(kernel, impl, (2, 16, 3) if kernel.startswith("scan") else (2, 33))
        if cases.skip_reason(case, CPU):
            continue
        run = cases.runner(case, CPU)
        run()
        seconds = timing.median_seconds(run, warmup=0, repeats=2, device=CPU)
        info = cases.extra_info(case, seconds, CPU)
        assert seconds > 0 and info["gbps"] > 0 and info["device"].startswith("CPU")


def test_extra_info_names_the_reference_the_site_quotes_speedups_against():
    info = cases.extra_info(cases.Case("adamw", "triton", (1, 8)), 1e-3, CPU)
    assert info["reference"] == "ref" and info["bytes"] == 28 * 8
    assert info["gbps"] == pytest.approx(28 * 8 / 1e-3 / 1e9)
    assert cases.extra_info(cases.Case("sgd", "torch_fused", (1, 8)), None, CPU)["reference"] == ""


def test_peak_bandwidth_lookup():
    assert cases.peak_gbps("NVIDIA H200") == 4800.0
    assert cases.peak_gbps("NVIDIA H100 80GB HBM3") == 3350.0
    assert cases.peak_gbps("NVIDIA A100-SXM4-80GB") == 2039.0
    assert cases.peak_gbps("Some CPU") is None
    assert cases.peak_gbps("h200") == 4800.0  # machine labels too
    assert cases.peak_gbps("a100-sxm4-80gb") == 2039.0
    assert cases.peak_gbps("cpu-2c") is None

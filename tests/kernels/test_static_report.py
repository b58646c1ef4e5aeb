"""kernels.report: the traffic meter on kernels whose traffic is known, the occupancy and
SASS arithmetic, an ahead-of-time compile, and the report's command."""

import json

import pytest
import report_toys
import torch
import triton
from markers import needs_interpreter

from kernels.report import ReportCase, collect_cases
from kernels.report.compile import (
    address_offset_bits,
    compile_launches,
    global_accesses,
    in_flight,
    occupancy,
)
from kernels.report.meter import TrafficMeter

# The meter counts what the Triton interpreter executes (bench/gpu.sh runs the kernel
# tests on CUDA, without it); the compile tests need no interpreter.


@needs_interpreter
def test_meter_counts_every_read_and_no_masked_lane():
    x = torch.randn(100)
    y = torch.empty(100)
    with TrafficMeter() as meter:
        report_toys.read_twice_kernel[(2,)](x, y, 100, BLOCK=64, num_warps=2)
    assert meter.loaded == 2 * 100 * 4  # two reads of x; the 28 masked lanes not counted
    assert meter.stored == 100 * 4
    torch.testing.assert_close(y, 2 * x)
    (launch,) = meter.launches
    assert launch.kernel == "report_toys:read_twice_kernel"
    assert launch.grid == [2]
    assert launch.args == [{"tensor": "float32", "aligned": True}] * 2 + [100]
    assert launch.kwargs == {"BLOCK": 64, "num_warps": 2}


@needs_interpreter
def test_meter_counts_narrow_dtypes_atomics_and_launches_separately():
    x = torch.randn(10).half()
    y = torch.empty(10, dtype=torch.float16)
    counter = torch.zeros(1, dtype=torch.int32)
    with TrafficMeter() as meter:
        report_toys.read_twice_kernel[(1,)](x, y, 10, BLOCK=16)
        report_toys.count_kernel[(3,)](counter)
    first, second = meter.launches
    assert (first.loaded, first.stored, first.atomic) == (40, 20, 0)
    assert (second.loaded, second.stored, second.atomic) == (0, 0, 12)
    assert counter.item() == 3
    assert meter.total == 72


@needs_interpreter
def test_meter_counts_the_sectors_an_access_touches():
    # Contiguous fp32: 100 elements in 13 sectors of 32 bytes; every fourth element of a
    # strided view: one sector each, 8x its bytes.
    x = torch.randn(800)
    y = torch.empty(100)
    with TrafficMeter() as meter:
        report_toys.read_twice_kernel[(1,)](x, y, 100, BLOCK=128)
    assert x.data_ptr() % 32 == 0 and y.data_ptr() % 32 == 0
    (contiguous,) = meter.launches
    assert (contiguous.sector_loaded, contiguous.sector_stored) == (2 * 13 * 32, 13 * 32)
    with TrafficMeter() as meter:
        report_toys.strided_copy_kernel[(1,)](x, y, 100, 8, BLOCK=128)
    (strided,) = meter.launches
    assert strided.loaded == 400 and strided.sector_loaded == 100 * 32
    assert meter.sector_total == 100 * 32 + 13 * 32


@needs_interpreter
def test_dry_meter_records_launches_without_running_them():
    x = torch.randn(64)
    y = torch.zeros(64)
    with TrafficMeter(dry=True) as meter:
        report_toys.read_twice_kernel[(1,)](x, y, 64, BLOCK=64)
        report_toys.read_twice_kernel[(1,)](torch.empty(1 << 40, device="meta"),
                                            torch.empty(1 << 40, device="meta"), 1 << 40,
                                            BLOCK=64)
    assert torch.equal(y, torch.zeros(64)) and meter.total == 0
    assert [launch.args[2] for launch in meter.launches] == [64, 1 << 40]
    assert meter.launches[1].args[0] == {"tensor": "float32", "aligned": True}


@needs_interpreter
def test_meter_scans_vectorized_with_the_interpreters_results():
    from kernels.report import interpreter

    x = torch.rand(16, 8)
    y, z = torch.empty(16, 8), torch.empty(16, 8)
    report_toys.running_max_kernel[(1,)](x, y, ROWS=16, COLS=8)  # the interpreter's own
    with TrafficMeter():
        from triton.runtime import interpreter as triton_interpreter

        assert triton_interpreter.ScanOps.generic_scan is interpreter._sliced_scan
        report_toys.running_max_kernel[(1,)](x, z, ROWS=16, COLS=8)
    assert torch.equal(y, z) and torch.equal(y, x.cummax(0).values)


@needs_interpreter
def test_meter_restores_the_interpreter():
    from triton.runtime import interpreter

    before = interpreter.InterpreterBuilder.create_masked_load
    with TrafficMeter():
        assert interpreter.InterpreterBuilder.create_masked_load is not before
    assert interpreter.InterpreterBuilder.create_masked_load is before


def test_occupancy_from_registers_shared_memory_and_warps():
    # The figures: 206 registers at 4 warps leave 2 blocks (8 of 64 warps).
    assert occupancy(90, 206, 0, 4) == {
        "blocks_per_sm": 2, "occupancy": 0.125, "limited_by": "registers"}
    assert occupancy(90, 110, 0, 4)["occupancy"] == 0.25
    assert occupancy(90, 32, 0, 4) == {
        "blocks_per_sm": 16, "occupancy": 1.0, "limited_by": "warps"}
    # 100 KiB of shared memory per block: 2 blocks on sm_90 (228 KiB), 1 on sm_80 (164 KiB).
    assert occupancy(90, 32, 100 * 1024, 4)["blocks_per_sm"] == 2
    assert occupancy(80, 32, 100 * 1024, 4) == {
        "blocks_per_sm": 1, "occupancy": 0.0625, "limited_by": "shared memory"}


def test_global_access_widths_from_sass():
    sass = """
        /*0070*/  LDG.E.64 R2, desc[UR4][R2.64] ;
        /*0080*/  LDG.E.128.CONSTANT R4, desc[UR4][R6.64] ;
        /*0090*/  LDG.E R8, desc[UR4][R6.64] ;
        /*00a0*/  STG.E.64 desc[UR4][R4.64], R2 ;
        /*00b0*/  STG.E.U16 desc[UR4][R4.64], R2 ;
        /*00c0*/  LDGSTS.E.BYPASS.128 [R1], desc[UR4][R2.64] ;
        /*00c8*/  LDGSTS.E.64 [R1+0x40], desc[UR4][R2.64], P0 ;
        /*00cc*/  LDGDEPBAR ;
        /*00d0*/  ATOMG.E.ADD.STRONG.GPU PT, R3, desc[UR4][R4.64], R3 ;
        /*00d8*/  ATOMS.ADD R3, [R4], R3 ;
        /*00e0*/  RED.E.ADD.STRONG.GPU desc[UR4][R4.64], R3 ;
    """
    # LDGDEPBAR (waiting on asynchronous copies) is no load, ATOMS no global atomic.
    assert global_accesses(sass) == {
        "loads": {"64": 1, "128": 1, "32": 1}, "stores": {"64": 1, "16": 1},
        "async_copies": 2, "async_copy_bits": {"128": 1, "64": 1}, "atomics": 2}


def test_address_offset_widths_from_triton_ir():
    ttir = """
        %5 = tt.addptr %4, %pairs : tensor<32x16x2x!tt.ptr<f32>>, tensor<32x16x2xi64> loc(#l)
        %7 = tt.addptr %arg0, %6 : !tt.ptr<i32>, i32 loc(#l)
        %9 = tt.addptr %8, %n : tensor<16x!tt.ptr<f32>>, tensor<16xi32> loc(#l)
        %10 = tt.load %9 : tensor<16x!tt.ptr<f32>>
    """
    assert address_offset_bits(ttir) == {"64": 1, "32": 2}


def test_bytes_in_flight_from_occupancy_grid_and_stages():
    compiled = {"blocks_per_sm": 5, "num_stages": 3, "async_copies": 12}
    # 512 programs on 132 SMs: the grid, not occupancy, bounds the resident programs.
    figures = in_flight(90, compiled, 512, 4096)
    assert figures["programs_per_sm"] == pytest.approx(512 / 132)
    assert figures["stages_in_flight"] == 2
    assert figures["bytes_in_flight_per_sm"] == pytest.approx(512 / 132 * 4096 * 2)
    # A large grid: occupancy bounds them; without asynchronous copies one stage.
    figures = in_flight(80, {**compiled, "async_copies": 0}, 10_000, 16384)
    assert figures["programs_per_sm"] == 5 and figures["bytes_in_flight_per_sm"] == 5 * 16384


@pytest.mark.slow
@needs_interpreter
def test_recorded_launches_compile_for_sm90_and_sm80():
    x, y = torch.randn(1024), torch.empty(1024)
    with TrafficMeter() as meter:
        report_toys.copy_kernel[(2,)](x, y, 1024, BLOCK=512, num_warps=1)
        report_toys.read_twice_kernel[(1,)](x, y, 1000, BLOCK=1024, num_warps=4)
    launches = [{"kernel": m.kernel, "args": m.args, "kwargs": m.kwargs} for m in meter.launches]
    (copy90, copy80), (twice90, _) = compile_launches(launches)
    assert copy90["arch"] == "sm_90" and copy80["arch"] == "sm_80"
    # 512 fp32 over 32 threads: 16 per thread in 128-bit accesses.
    assert copy90["loads"] == {"128": 4} and copy90["stores"] == {"128": 4}
    assert copy90["num_warps"] == 1 and 0 < copy90["registers"] <= 64
    assert copy90["spill_stores"] == copy90["spill_loads"] == 0
    assert copy90["occupancy"] == occupancy(90, copy90["registers"], copy90["shared_bytes"], 1)[
        "occupancy"]
    # The masked kernel: n = 1000 is not known to be a multiple of anything.
    assert set(twice90["loads"]) == {"32"} and twice90["num_warps"] == 4


@needs_interpreter
def test_report_command_writes_json(tmp_path, monkeypatch, capsys):
    from kernels.report import __main__ as command

    def run():
        x = torch.randn(300)
        report_toys.read_twice_kernel[(3,)](x, torch.empty(300), 300, BLOCK=128)

    case = ReportCase("toy 300", "toy", 300, "fp32 element", 12.0, run,
                      target_bytes_per_element=12.0)
    monkeypatch.setattr("kernels.report.collect_cases", lambda: [case])
    out = tmp_path / "static.json"
    assert command.main(["--out", str(out)]) == 0
    report = json.loads(out.read_text())
    (row,) = report["cases"]
    assert row["bytes_per_element"] == 12.0 and row["ceiling"] == 1.0
    (kernel,) = row["kernels"]
    assert kernel["launches"] == 1 and kernel["grid"] == [3]
    assert [c["arch"] for c in kernel["compiled"]] == ["sm_90", "sm_80"]
    printed = capsys.readouterr().out
    assert "toy 300" in printed and "read_twice_kernel" in printed and str(out) in printed


@pytest.mark.slow
@needs_interpreter
def test_bench_run_compiles_the_benchmark_sizes_own_launch(monkeypatch):
    from kernels.report import __main__ as command

    def launch(n, device):
        x = torch.randn(n) if device == "cpu" else torch.empty(n, device=device)
        report_toys.read_twice_kernel[(triton.cdiv(n, 128),)](x, torch.empty_like(x), n,
                                                               BLOCK=128)

    case = ReportCase("toy", "toy", 300, "fp32 element", 12.0, lambda: launch(300, "cpu"),
                      bench_run=lambda: launch(1 << 30, "meta"),
                      stage_elements=lambda kwargs: kwargs["BLOCK"])
    (row,) = command.build_report([case], archs=(90,))["cases"]
    (kernel,) = row["kernels"]
    assert kernel["args"][2] == 1 << 30 and kernel["grid"] == [(1 << 30) // 128]
    assert kernel["metered_grid"] == [3] and row["bytes_per_element"] == 12.0
    assert kernel["stage_bytes"] == 8 * 128  # two loads of 4 bytes per element
    (sm90,) = kernel["compiled"]
    assert sm90["programs"] == (1 << 30) // 128
    assert sm90["bytes_in_flight_per_sm"] == sm90["blocks_per_sm"] * 8 * 128

    other = ReportCase("toy", "toy", 300, "fp32 element", 12.0, lambda: launch(300, "cpu"),
                       bench_run=lambda: report_toys.count_kernel[(1,)](torch.zeros(1)))
    with pytest.raises(RuntimeError, match="launches none of report_toys:read_twice_kernel"):
        command.build_report([other], archs=(90,))


def test_collect_cases_skips_families_without_cases_and_rejects_duplicates(monkeypatch):
    assert collect_cases(("no_such_family",)) == []
    cases = collect_cases(("scan",))
    assert cases and all(c.family == "scan" for c in cases)
    with pytest.raises(ValueError, match="unique"):
        collect_cases(("scan", "scan"))

"""kernels.optim's fast paths: aligned 128-bit kernels, the CPU's fused steps, one-pass
NGN (gradient hooks), the bytes models and the static report's figures."""

import copy
import gc
import subprocess
import sys
from unittest import mock

import pytest
import torch
from markers import needs_interpreter
from optim_helpers import (
    ATOL_FP16,
    ATOL_FP32,
    BACKENDS_SLOW_TRITON,
    Net,
    adamw_state,
    assert_close_fp32,
    awkward_tensors,
    clone_all,
    data,
    launches,
    ngn_groups,
    one_thread,  # noqa: F401 (an autouse fixture)
    train,
    two_runs,
)

from kernels.optim import NGN, AdamW, adamw_step_ref, traffic
from kernels.optim import triton_optim as T
from kernels.optim.cpu_fused import adamw_step_cpu, ngn_update_cpu
from kernels.optim.reference import ngn_update_ref

# --------------------------------------------------------------------------- alignment


def test_table_marks_misaligned_addresses():
    # Views at an element offset (a parameter carved out of a flat buffer) are not
    # 16-byte aligned: the kernels then take their scalar path.
    flat = torch.zeros(4099)
    aligned, shifted = flat[:2048], flat[1:2049]
    steps = [torch.zeros(())]
    table, programs, ok = T._table([[aligned], [aligned]], torch.device("cpu"), 1024, (steps,))
    assert ok and programs.tolist() == [2] and len(table) == 6
    assert not T._table([[aligned], [shifted]], torch.device("cpu"), 1024)[2]


def test_misaligned_views_match_the_reference():
    flat = torch.randn(2 * 3073 + 3)
    params = [flat[1:3074], flat[3075 : 2 * 3073 + 2]]
    grads = [torch.randn(3073), torch.randn(3073)]
    ref_params = [p.clone() for p in params]
    ref_bufs, fused_bufs = ([torch.zeros(3073) for _ in params] for _ in range(2))
    gamma = torch.tensor(0.3)
    ngn_update_ref(ref_params, grads, ref_bufs, gamma, 0.1, 0.9)
    T.ngn_update_triton(params, grads, fused_bufs, gamma, 0.1, 0.9, chunk=2048)
    assert_close_fp32(params, ref_params)


def test_chunk_must_hold_whole_blocks():
    p = torch.zeros(10)
    with pytest.raises(ValueError, match="multiple"):
        T.ngn_update_triton([p], [p.clone()], None, torch.tensor(1.0), 0.0, 0.0, chunk=1000)


# --------------------------------------------------------------------------- CPU


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_cpu_fused_adamw_matches_reference_on_awkward_tensors(dtype):
    # The last tensor's gradient has other strides than its parameter: torch's fused
    # CPU kernel would mix its elements up, so it takes the reference.
    params, grads = awkward_tensors(dtype)
    state_dtype = torch.float32 if dtype == torch.bfloat16 else dtype
    ref_params, cpu_params = clone_all(params), clone_all(params)
    ref_state, cpu_state = adamw_state(params, state_dtype), adamw_state(params, state_dtype)
    hp = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1)
    with mock.patch.object(torch, "_fused_adamw_", wraps=torch._fused_adamw_) as fused:
        for _ in range(3):
            adamw_step_ref(ref_params, grads, *ref_state, **hp)
            adamw_step_cpu(cpu_params, grads, *cpu_state, **hp)
    assert fused.call_count == (0 if dtype == torch.bfloat16 else 3)
    bound = ATOL_FP16 if dtype == torch.bfloat16 else ATOL_FP32
    assert_close_fp32(cpu_params, ref_params, bound)
    assert [s.item() for s in cpu_state[2]] == [3.0] * len(params)


@pytest.mark.parametrize("momentum,decay", [(0.0, 0.0), (0.0, 0.1), (0.8, 0.1)])
def test_cpu_ngn_update_matches_reference(momentum, decay):
    params, grads = awkward_tensors()
    ref_params, cpu_params = clone_all(params), clone_all(params)
    buffers = lambda: [torch.zeros_like(p) for p in params] if momentum else None
    ref_bufs, cpu_bufs = buffers(), buffers()
    for gamma in (0.37, 0.11):
        ngn_update_ref(ref_params, grads, ref_bufs, torch.tensor(gamma), decay, momentum)
        ngn_update_cpu(cpu_params, grads, cpu_bufs, torch.tensor(gamma), decay, momentum)
    assert_close_fp32(cpu_params, ref_params)
    if momentum:
        assert_close_fp32(cpu_bufs, ref_bufs)


def test_optimizers_on_the_cpu_use_torchs_fused_kernels():
    p = torch.nn.Parameter(torch.randn(6))
    p.grad = torch.randn(6)
    with mock.patch.object(torch, "_fused_adamw_", wraps=torch._fused_adamw_) as fused:
        AdamW([p], backend="auto").step()
    assert fused.call_count == 1


# --------------------------------------------------------------------------- NGN, one pass


@pytest.mark.parametrize("backend", BACKENDS_SLOW_TRITON)
def test_one_pass_ngn_matches_two_pass_for_hundreds_of_steps(backend):
    (ours, one), (theirs, two) = two_runs(backend=backend)
    x, y = data()
    before = launches("sq_norm")
    steps = 200 if backend == "torch" else 60  # the interpreter is slow; the hooks are torch
    for step in range(steps):
        for model, opt in ((ours, one), (theirs, two)):
            # Alternate the two ways of clearing gradients: both leave hooks in charge.
            opt.zero_grad(set_to_none=step % 2 == 0)
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step(loss=loss)
        assert one.last_step_one_pass and not two.last_step_one_pass
        # Triton's ‖g‖² sums in another order than torch's norm: round-off then drifts.
        rel = 1e-6 if backend == "torch" else 1e-5
        assert one.last_step_sizes() == pytest.approx(two.last_step_sizes(), rel=rel)
    assert_close_fp32(list(ours.parameters()), list(theirs.parameters()), 100 * rel)
    if backend == "triton":
        assert launches("sq_norm") - before == steps  # the two-pass optimizer's only


def test_one_pass_ngn_with_a_closure_that_calls_backward_twice():
    # Each backward's hook sees the accumulated gradient, so the norm stays exact.
    (ours, one), (theirs, two) = two_runs()
    x, y = data()

    def closure_for_twice(model, opt):
        def closure():
            opt.zero_grad()
            first = torch.nn.functional.mse_loss(model(x[:16]), y[:16])
            first.backward()
            second = torch.nn.functional.mse_loss(model(x[16:]), y[16:])
            second.backward()
            return first + second

        return closure

    for _ in range(20):
        one.step(closure_for_twice(ours, one))
        two.step(closure_for_twice(theirs, two))
        assert one.last_step_one_pass
    assert_close_fp32(list(ours.parameters()), list(theirs.parameters()))


def clip(model):
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01)


def set_by_hand(model):
    model.fc2.weight.grad = torch.ones_like(model.fc2.weight)


def drop_one(model):
    model.fc1.bias.grad = None


def scale_in_place(model):
    model.z.grad.mul_(3.0)


@pytest.mark.parametrize("change", [clip, set_by_hand, drop_one, scale_in_place])
def test_one_pass_ngn_falls_back_when_gradients_change_after_the_backward(change):
    (ours, one), (theirs, two) = two_runs()
    x, y = data()
    for step in range(6):
        for model, opt in ((ours, one), (theirs, two)):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            if step % 2:
                change(model)
            opt.step(loss=loss)
        assert one.last_step_one_pass == (step % 2 == 0)
        assert one.last_step_sizes() == pytest.approx(two.last_step_sizes(), rel=1e-6)
    assert_close_fp32(list(ours.parameters()), list(theirs.parameters()))


def test_one_pass_ngn_without_a_backward_reads_the_gradients():
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = NGN([p], sigma=0.5, one_pass=True)
    p.grad = torch.tensor([3.0, 4.0])
    opt.step(loss=1.0)
    assert not opt.last_step_one_pass
    assert opt.last_step_sizes() == pytest.approx([0.5 / (1 + 0.5 * 25 / 2)])
    # A second step on the same gradient, no backward between: the slots were cleared.
    opt.step(loss=1.0)
    assert not opt.last_step_one_pass


def test_one_pass_ngn_hooks_new_groups_skips_frozen_parameters_and_unhooks_when_gone():
    model = Net()
    model.fc3.bias.requires_grad_(False)
    opt = NGN([{"params": model.fc1.parameters()}], sigma=0.5, one_pass=True)
    opt.add_param_group({"params": [*model.fc2.parameters(), *model.fc3.parameters()]})
    x, y = data()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    layers = [*model.fc1.parameters(), *model.fc2.parameters(), *model.fc3.parameters()]
    expected = sum(p.grad.pow(2).sum() for p in layers if p.grad is not None)
    opt.step(loss=loss)
    assert opt.last_step_one_pass
    scale = 2 * loss.item() / (2 * loss.item() + 0.5 * expected.item())
    assert opt.last_step_sizes() == pytest.approx([0.5 * scale] * 2, rel=1e-5)
    hooked = model.fc1.weight._post_accumulate_grad_hooks
    assert hooked and not model.fc3.bias._post_accumulate_grad_hooks
    del opt

    gc.collect()
    assert not model.fc1.weight._post_accumulate_grad_hooks


@pytest.mark.parametrize("resumed_one_pass", [True, False])
def test_one_pass_ngn_state_dict_round_trip(resumed_one_pass):
    model = Net()
    x, y = data()
    opt = NGN(ngn_groups(model), sigma=0.5, one_pass=True)
    train(model, opt, 5, x, y)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    train(model, opt, 3, x, y)
    resumed = Net()
    resumed.load_state_dict(saved_model)
    again = NGN(ngn_groups(resumed), sigma=0.5, one_pass=resumed_one_pass)
    again.load_state_dict(saved_opt)
    train(resumed, again, 3, x, y)
    assert again.last_step_one_pass == resumed_one_pass
    assert_close_fp32(list(resumed.parameters()), list(model.parameters()))


# --------------------------------------------------------------------------- traffic


def test_bytes_models_count_each_operand_once():
    # fp32: AdamW reads p, g, m, v and writes p, m, v; bf16 keeps fp32 moments.
    assert traffic.adamw_bytes_per_param() == 7 * 4
    assert traffic.adamw_bytes_per_param(2) == 3 * 2 + 4 * 4
    assert traffic.sgd_bytes_per_param() == 12
    assert traffic.sgd_bytes_per_param(momentum=True) == 20
    assert traffic.grad_sq_norm_bytes_per_param(2) == 2
    # NGN two-pass = ‖g‖² pass + SGD's update; one pass = the update alone.
    assert traffic.ngn_bytes_per_param() == 16
    assert traffic.ngn_bytes_per_param(one_pass=True) == traffic.sgd_bytes_per_param()
    assert traffic.ngn_bytes_per_param(2, momentum=True, one_pass=True) == 3 * 2 + 2 * 4


def test_bench_cases_learn_the_bytes_without_triton():

    code = "import sys, bench.cases; assert 'triton' not in sys.modules, 'triton imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- static report




@pytest.fixture(scope="module")
def optim_report():
    """The static report of the optimizer cases (interpreter traffic, sm_90 compile)."""
    from kernels.optim.report_cases import report_cases
    from kernels.report.__main__ import build_report

    return build_report(report_cases(), archs=(90,))["cases"]


@pytest.mark.slow
@needs_interpreter
def test_report_optimizer_steps_move_their_models_bytes(optim_report):
    from kernels.optim.report_cases import NGN_ONE_PASS_TARGET

    names = [row["name"] for row in optim_report]
    assert "ngn one-pass float32 1x16777216" in names and "adamw float16 1x16777216" in names
    for row in optim_report:
        # Each operand read once and written once; the pointer table adds 56 B per program.
        model = row["model_bytes_per_element"]
        assert model <= row["bytes_per_element"] <= model + 0.02, row["name"]
        if row["name"].startswith("ngn one-pass"):
            assert row["bytes_per_element"] <= NGN_ONE_PASS_TARGET
            assert [k["kernel"].split(":")[1] for k in row["kernels"]] == ["_ngn_kernel"]


@pytest.mark.slow
@needs_interpreter
def test_report_optimizer_kernels_vectorize_without_spills(optim_report):
    for row in optim_report:
        for kernel in row["kernels"]:
            name = kernel["kernel"].split(":")[1]
            assert kernel["kwargs"]["ALIGNED"], (row["name"], name)
            (sm90,) = kernel["compiled"]
            assert sm90["spill_stores"] == sm90["spill_loads"] == 0, (row["name"], name)
            assert sm90["occupancy"] >= 0.5, (row["name"], name, sm90["registers"])
            assert "128" in sm90["loads"], (row["name"], name, sm90["loads"])
            if name != "_sq_norm_kernel":  # which stores one partial sum per program
                assert "128" in sm90["stores"], (row["name"], name, sm90["stores"])


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_misaligned_views_on_cuda_match_the_reference():
    # Compiled, ALIGNED=False is another kernel than the aligned one tested elsewhere.
    flat = torch.randn(2 * 5003 + 3, device="cuda")
    params = [flat[1:5004], flat[5005 : 2 * 5003 + 2]]
    grads = [torch.randn(5003, device="cuda") for _ in params]
    assert not T._table([params], flat.device, T.CHUNK)[2]
    ref_params = [p.clone() for p in params]
    ref_state, fused_state = adamw_state(params), adamw_state(params)
    hp = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1)
    for _ in range(3):
        adamw_step_ref(ref_params, grads, *ref_state, **hp)
        T.adamw_step_triton(params, grads, *fused_state, **hp)
    torch.cuda.synchronize()
    assert_close_fp32(params, ref_params)


@pytest.mark.gpu
def test_one_pass_ngn_on_cuda_matches_two_pass():
    ours = Net().cuda()
    theirs = copy.deepcopy(ours)
    x, y = (t.cuda() for t in data())
    one = NGN(ngn_groups(ours), sigma=0.5, one_pass=True)
    two = NGN(ngn_groups(theirs), sigma=0.5)
    for _ in range(50):
        for model, opt in ((ours, one), (theirs, two)):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step(loss=loss)
        assert one.last_step_one_pass
    assert_close_fp32(list(ours.parameters()), list(theirs.parameters()), 1e-5)

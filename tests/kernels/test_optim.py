"""kernels.optim: AdamW/Adam and NGN, reference (torch) and fused (Triton) backends.

Without CUDA the Triton kernels run under the interpreter (tests/conftest.py), so sizes
are small but awkward: odd lengths, tensors spanning several blocks and several
programs, a hundred tiny tensors, complex and transposed parameters.
"""

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from optim_helpers import (
    ATOL_FP16,
    ATOL_FP32,
    BACKENDS,
    BACKENDS_SLOW_TRITON,
    Net,
    adamw_state,
    assert_close_fp32,
    awkward_tensors,
    chunk_for,
    clone_all,
    closure_for,
    data,
    launches,
    one_thread,  # noqa: F401 (an autouse fixture)
    train,
)

from kernels.optim import NGN, Adam, AdamW, adamw_step_ref, ngn_step_ref
from kernels.optim import triton_optim as T
from kernels.optim.reference import grad_sq_norms_ref, ngn_update_ref

# --------------------------------------------------------------------------- AdamW


@pytest.mark.parametrize("backend", BACKENDS_SLOW_TRITON)
def test_adamw_matches_torch_adamw_for_200_steps(backend):
    ours = Net()
    theirs = copy.deepcopy(ours)
    opt = AdamW(ours.groups(), lr=1e-2, weight_decay=0.02, backend=backend)
    ref = torch.optim.AdamW(theirs.groups(), lr=1e-2, weight_decay=0.02)
    x, y = data()
    before = launches("adamw")
    for _ in range(200):
        for model, o in ((ours, opt), (theirs, ref)):
            o.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            o.step()
    assert_close_fp32(list(ours.parameters()), list(theirs.parameters()))
    if backend == "triton":
        assert launches("adamw") - before == 200 * 3  # one launch per group and step


def test_adam_is_adamw_without_decay():
    assert Adam([torch.nn.Parameter(torch.ones(2))]).defaults["weight_decay"] == 0.0
    p = torch.nn.Parameter(torch.randn(5))
    q = torch.nn.Parameter(p.detach().clone())
    a, b = Adam([p], lr=0.1, backend="torch"), torch.optim.Adam([q], lr=0.1)
    for _ in range(5):
        for param, o in ((p, a), (q, b)):
            o.zero_grad()
            (param**2).sum().backward()
            o.step()
    assert_close_fp32([p], [q])


@pytest.mark.parametrize("backend", BACKENDS)
def test_adamw_with_zero_lr_moves_only_the_moments(backend):
    # lr = 0 happens at the start of a warm-up from zero.
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = AdamW([p], lr=0.0, weight_decay=0.1, backend=backend)
    p.grad = torch.tensor([0.0, 1.0, -3.0])
    opt.step()
    assert p.tolist() == [1.0, -2.0, 0.5]
    assert opt.state[p]["exp_avg"].tolist() == pytest.approx([0.0, 0.1, -0.3])


@pytest.mark.parametrize(
    "dtype,betas",
    [(torch.float32, (0.9, 0.999)), (torch.float32, (0.0, 0.99)), (torch.float16, (0.9, 0.999))],
    ids=["fp32", "fp32-beta1=0", "fp16"],
)
def test_fused_adamw_matches_reference_on_awkward_tensors(dtype, betas):
    params, grads = awkward_tensors(dtype)
    ref_params, fused_params = clone_all(params), clone_all(params)
    ref_state, fused_state = adamw_state(params), adamw_state(params)
    hp = dict(lr=1e-2, beta1=betas[0], beta2=betas[1], eps=1e-8, weight_decay=0.1)
    before = launches("adamw")
    for _ in range(2):
        adamw_step_ref(ref_params, grads, *ref_state, **hp)
        T.adamw_step_triton(fused_params, grads, *fused_state, **hp, chunk=chunk_for(dtype))
    assert launches("adamw") - before == 2
    assert_close_fp32(fused_params, ref_params, ATOL_FP32 if dtype == torch.float32 else ATOL_FP16)
    for fused, ref in zip(fused_state, ref_state, strict=True):
        assert_close_fp32(fused, ref)


# --------------------------------------------------------------------------- NGN


def ngn_transcription(params, loss_fn, sigma, steps):
    """NGN written out directly from the formula (thesis §4.3), one parameter group."""
    gammas = []
    for _ in range(steps):
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params)
        sq_norm = sum(g.abs().pow(2).sum() for g in grads)
        gamma = sigma / (1 + sigma * sq_norm / (2 * loss.detach()))
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= gamma * g
        gammas.append(gamma.item())
    return gammas


@pytest.mark.parametrize("c", [0.0, 0.25])
@pytest.mark.parametrize("backend", BACKENDS)
def test_ngn_matches_the_formula_on_a_1d_quadratic(backend, c):
    # f(x) = a x²/2 + c: ‖g‖² = a² x², so γ = σ / (1 + σ a² x² / (a x² + 2c)). With c = 0
    # that is σ/(1 + σa) at every x, and x contracts by 1/(1 + σa) per step.
    a, sigma = 3.0, 0.7
    x = torch.nn.Parameter(torch.tensor([1.5]))
    opt = NGN([x], sigma=sigma, backend=backend)
    for _ in range(3):
        x0 = x.item()
        opt.zero_grad()
        f = 0.5 * a * x.pow(2).sum() + c
        f.backward()
        opt.step(loss=f)
        gamma = sigma / (1 + sigma * a**2 * x0**2 / (a * x0**2 + 2 * c))
        assert opt.last_step_sizes()[0] == pytest.approx(gamma, rel=1e-6)
        assert x.item() == pytest.approx(x0 - gamma * a * x0, abs=1e-6 * abs(x0))
        if c == 0.0:
            assert x.item() == pytest.approx(x0 / (1 + sigma * a), rel=1e-6)


@pytest.mark.parametrize("backend", BACKENDS_SLOW_TRITON)
def test_ngn_matches_the_formula_on_an_mlp_for_100_steps(backend):
    ours = Net()
    theirs = copy.deepcopy(ours)
    x, y = data()
    opt = NGN(ours.parameters(), sigma=0.5, backend=backend)
    closure = closure_for(ours, opt, x, y)
    gammas = []
    before = launches("ngn")
    for _ in range(100):
        opt.step(closure)
        gammas.append(opt.last_step_sizes()[0])
    params = list(theirs.parameters())
    expected = ngn_transcription(
        params, lambda: torch.nn.functional.mse_loss(theirs(x), y), 0.5, 100
    )
    assert_close_fp32(list(ours.parameters()), params, 1e-5)
    assert gammas == pytest.approx(expected, rel=1e-5)
    if backend == "triton":
        assert launches("ngn") - before == 100


@settings(max_examples=40, deadline=None)
@given(
    log_sigma=st.floats(-3, 3),
    curvatures=st.lists(st.floats(1e-3, 1e2), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_ngn_step_size_lies_in_its_bounds_on_quadratics(log_sigma, curvatures, seed):
    # f = ½ Σ λ_i x_i², L = max λ: ‖g‖² <= 2Lf, so γ ∈ [1/(L + 1/σ), σ] (Lemma D.2.1).
    sigma, lam = 10.0**log_sigma, torch.tensor(curvatures, dtype=torch.float64)
    x = torch.randn(len(curvatures), generator=torch.Generator().manual_seed(seed))
    x = torch.nn.Parameter(x.double())
    f = 0.5 * (lam * x * x).sum()
    f.backward()
    gamma = ngn_step_ref([x.detach()], [x.grad], f.detach(), sigma)
    low, high = 1 / (lam.max().item() + 1 / sigma), sigma
    assert low * (1 - 1e-9) <= gamma.item() <= high * (1 + 1e-9)


def quadratic_run(optimizer_step, x, lam, c, steps):
    values = []
    for _ in range(steps):
        f = 0.5 * (lam * x * x).sum() + c
        values.append(f.item() - c)
        optimizer_step(x, f)
    return values


@pytest.mark.parametrize("backend", BACKENDS)
def test_ngn_does_not_diverge_where_gd_does(backend):
    # Thesis Fig. 37 / Thm 4.3.1: 2-D PSD quadratic, L = 1, step size 10/L.
    lam, L = torch.tensor([1.0, 0.1]), 1.0
    lr = sigma = 10 / L

    def gd(x, f):
        (g,) = torch.autograd.grad(f, x)
        with torch.no_grad():
            x -= lr * g

    gd_values = quadratic_run(gd, torch.ones(2, requires_grad=True), lam, 0.0, 15)
    assert gd_values[-1] > 1e20 * gd_values[0]  # GD diverges: |1 - ηL| = 9

    for c in (0.0, 0.1):
        x = torch.nn.Parameter(torch.ones(2))
        opt = NGN([x], sigma=sigma, backend=backend)

        def ngn(x, f, opt=opt):
            opt.zero_grad()
            f.backward()
            opt.step(loss=f)

        values = quadratic_run(ngn, x, lam, c, 80)
        assert all(math.isfinite(v) for v in values)
        if c == 0.0:
            assert values[-1] <= 1e-12 * values[0]  # f* = 0: converges to the minimum
        else:
            # f* = c > 0: no divergence; it settles within O(σ L f*) of f* (here at 2c/3).
            assert max(values[-40:]) <= sigma * L * c
            assert max(values[-40:]) <= values[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ngn_zero_loss_gives_a_zero_step(backend):
    x = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = NGN([x], sigma=1.0, backend=backend)
    x.grad = torch.tensor([3.0, 4.0])
    opt.step(loss=0.0)
    assert x.tolist() == [1.0, -2.0] and opt.last_step_sizes() == [0.0]
    x.grad = torch.zeros(2)
    opt.step(loss=torch.tensor(0.0))
    assert x.tolist() == [1.0, -2.0] and opt.last_step_sizes() == [0.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ngn_groups_share_the_gradient_norm(backend):
    # γ_j = σ_j / (1 + Σ_k σ_k ‖g_k‖² / (2f)); with equal σ, splitting changes nothing.
    a, b = torch.nn.Parameter(torch.tensor([1.0, 2.0])), torch.nn.Parameter(torch.tensor([3.0]))
    opt = NGN([{"params": [a]}, {"params": [b], "sigma": 0.2}], sigma=0.5, backend=backend)
    a.grad, b.grad = torch.tensor([1.0, -1.0]), torch.tensor([2.0])
    opt.step(loss=1.5)
    scale = 2 * 1.5 / (2 * 1.5 + 0.5 * 2.0 + 0.2 * 4.0)
    assert opt.last_step_sizes() == pytest.approx([0.5 * scale, 0.2 * scale], rel=1e-6)
    assert a.tolist() == pytest.approx([1 - 0.5 * scale, 2 + 0.5 * scale], rel=1e-6)
    assert b.item() == pytest.approx(3 - 0.2 * scale * 2, rel=1e-6)
    assert isinstance(opt.param_groups[0]["last_gamma"], torch.Tensor)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ngn_momentum_and_weight_decay(backend):
    # m <- β m + (1-β) γ g, p <- p(1 - γ wd) - m, with γ from the one-group formula.
    p = torch.nn.Parameter(torch.tensor([1.0, -0.5, 2.0]))
    opt = NGN([p], sigma=0.3, weight_decay=0.1, momentum=0.9, backend=backend)
    expected, buf = p.detach().clone(), torch.zeros(3)
    for loss in (2.0, 1.0, 0.5):
        p.grad = torch.tensor([0.5, 1.0, -1.0]) * loss
        g = p.grad.clone()
        gamma = 0.3 / (1 + 0.3 * g.pow(2).sum() / (2 * loss))
        buf = 0.9 * buf + 0.1 * gamma * g
        expected = expected * (1 - gamma * 0.1) - buf
        opt.step(loss=loss)
    assert p.tolist() == pytest.approx(expected.tolist(), rel=1e-6)
    assert opt.state[p]["momentum_buffer"].tolist() == pytest.approx(buf.tolist(), rel=1e-6)


@pytest.mark.parametrize(
    "dtype,momentum",
    [(torch.float32, 0.0), (torch.float32, 0.8), (torch.float16, 0.8)],
    ids=["fp32", "fp32-momentum", "fp16-momentum"],
)
def test_fused_ngn_matches_reference_on_awkward_tensors(dtype, momentum):
    params, grads = awkward_tensors(dtype)
    halves = [grads[: len(grads) // 2], grads[len(grads) // 2 :]]
    before = launches("sq_norm")
    chunk = chunk_for(dtype)
    fused_norms = T.grad_sq_norms_triton(halves, chunk=chunk)
    assert launches("sq_norm") - before == 1  # one reduction over both lists
    for fused, ref in zip(fused_norms, grad_sq_norms_ref(halves), strict=True):
        assert fused.item() == pytest.approx(ref.item(), rel=1e-5)

    ref_params, fused_params = clone_all(params), clone_all(params)
    buffers = lambda: [torch.zeros_like(p, dtype=torch.float32) for p in params]
    ref_bufs, fused_bufs = buffers(), buffers()
    gamma = torch.tensor(0.37)
    for _ in range(2):
        ngn_update_ref(ref_params, grads, ref_bufs, gamma, 0.1, momentum)
        T.ngn_update_triton(fused_params, grads, fused_bufs, gamma, 0.1, momentum, chunk=chunk)
    assert_close_fp32(fused_params, ref_params, ATOL_FP32 if dtype == torch.float32 else ATOL_FP16)
    if momentum:
        assert_close_fp32(fused_bufs, ref_bufs)


def test_ngn_step_functions_agree():
    params, grads = awkward_tensors()
    ref_params, fused_params = clone_all(params), clone_all(params)
    loss = torch.tensor(2.5)
    g_ref = ngn_step_ref(ref_params, grads, loss, sigma=2.0, weight_decay=0.01)
    g_fused = T.ngn_step_triton(fused_params, grads, loss, sigma=2.0, weight_decay=0.01)
    assert g_fused.item() == pytest.approx(g_ref.item(), rel=1e-6)
    assert_close_fp32(fused_params, ref_params)


# --------------------------------------------------------------------------- state


OPTIMIZERS = {
    "adamw": lambda params, backend: AdamW(params, lr=1e-2, weight_decay=0.1, backend=backend),
    "ngn": lambda params, backend: NGN(params, sigma=0.5, momentum=0.9, backend=backend),
}


@pytest.mark.parametrize(
    "first,second",
    [("torch", "torch"), ("triton", "triton"), ("torch", "triton"), ("triton", "torch")],
)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_gives_the_same_next_step(name, first, second):
    model = Net()
    x, y = data()
    opt = OPTIMIZERS[name](model.groups() if name == "adamw" else model.parameters(), first)
    train(model, opt, 5, x, y)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    train(model, opt, 1, x, y)

    resumed = Net()
    resumed.load_state_dict(saved_model)
    params = resumed.groups() if name == "adamw" else resumed.parameters()
    resumed_opt = OPTIMIZERS[name](params, second)
    resumed_opt.load_state_dict(saved_opt)
    train(resumed, resumed_opt, 1, x, y)
    bound = 0.0 if first == second else ATOL_FP32
    assert_close_fp32(list(resumed.parameters()), list(model.parameters()), bound)


def test_adamw_state_dict_moves_to_and_from_torch_adamw():
    x, y = data()
    for source, target in ((AdamW, torch.optim.AdamW), (torch.optim.AdamW, AdamW)):
        model = Net()
        opt = source(model.groups(), lr=1e-2)
        train(model, opt, 5, x, y)
        saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
        train(model, opt, 1, x, y)
        resumed = Net()
        resumed.load_state_dict(saved_model)
        resumed_opt = target(resumed.groups(), lr=1e-2)
        resumed_opt.load_state_dict(saved_opt)
        train(resumed, resumed_opt, 1, x, y)
        assert_close_fp32(list(resumed.parameters()), list(model.parameters()))


def test_low_precision_parameters_keep_fp32_state_through_state_dict():
    p = torch.nn.Parameter(torch.randn(9).half())
    opt = AdamW([p], backend="torch")
    p.grad = torch.randn(9).half()
    opt.step()
    assert opt.state[p]["exp_avg"].dtype == torch.float32
    again = AdamW([p], backend="torch")
    again.load_state_dict(copy.deepcopy(opt.state_dict()))
    for key in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(again.state[p][key], opt.state[p][key])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("make", [lambda p: AdamW(p, lr=0.1), lambda p: NGN(p, momentum=0.5)])
def test_low_precision_parameters_are_rounded_once(make, dtype):
    # The reference updates a bf16/fp16 parameter in fp32 and rounds the result once.
    low = torch.nn.Parameter(torch.randn(33).to(dtype))
    high = torch.nn.Parameter(low.detach().float())
    low.grad = torch.randn(33).to(dtype)
    high.grad = low.grad.float()
    for p in (low, high):
        opt = make([p])
        opt.step(loss=0.7) if isinstance(opt, NGN) else opt.step()
    assert torch.equal(low, high.detach().to(dtype))


# --------------------------------------------------------------------------- backends


def test_lsb_optim_backend_overrides_auto(monkeypatch):
    p = torch.nn.Parameter(torch.randn(5))
    p.grad = torch.randn(5)
    monkeypatch.setenv("LSB_OPTIM_BACKEND", "triton")
    before = launches("adamw")
    AdamW([p]).step()
    assert launches("adamw") - before == 1
    monkeypatch.setenv("LSB_OPTIM_BACKEND", "torch")
    AdamW([p]).step()
    assert launches("adamw") - before == 1
    monkeypatch.setenv("LSB_OPTIM_BACKEND", "chunked")  # the scan's word, not the optimizers'
    with pytest.raises(ValueError, match="LSB_OPTIM_BACKEND='chunked'.*auto, torch, triton"):
        AdamW([p]).step()


def test_auto_uses_torch_on_cpu(monkeypatch):
    monkeypatch.delenv("LSB_OPTIM_BACKEND", raising=False)
    p = torch.nn.Parameter(torch.randn(5))
    p.grad = torch.randn(5)
    before = launches("adamw") + launches("ngn")
    AdamW([p]).step()
    NGN([p]).step(loss=1.0)
    assert launches("adamw") + launches("ngn") == before


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: AdamW(p, backend="cuda"), "backend"),
        (lambda p: AdamW(p, lr=-1.0), "lr"),
        (lambda p: AdamW(p, betas=(0.9, 1.0)), "betas"),
        (lambda p: AdamW(p, eps=-1e-8), "eps"),
        (lambda p: AdamW(p, weight_decay=-0.1), "weight_decay"),
        (lambda p: AdamW([{"params": p, "lr": -1.0}]), "lr"),
        (lambda p: NGN(p, sigma=0.0), "sigma"),
        (lambda p: NGN(p, momentum=1.0), "momentum"),
        (lambda p: NGN(p, weight_decay=-1.0), "weight_decay"),
        (lambda p: NGN([{"params": p, "sigma": -1.0}]), "sigma"),
    ],
)
def test_bad_hyperparameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make([torch.nn.Parameter(torch.ones(2))])


@pytest.mark.parametrize("make", [lambda p: AdamW(p), lambda p: NGN(p)])
def test_sparse_gradients_raise(make):
    emb = torch.nn.Embedding(10, 3, sparse=True)
    emb(torch.tensor([1, 2])).sum().backward()
    opt = make(emb.parameters())
    with pytest.raises(ValueError, match="sparse"):
        opt.step(loss=1.0) if isinstance(opt, NGN) else opt.step()


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_ngn_rejects_a_negative_or_non_finite_loss(bad, as_tensor):
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    opt = NGN([p])
    with pytest.raises(ValueError, match="non-negative, finite loss"):
        opt.step(loss=torch.tensor(bad) if as_tensor else bad)
    with pytest.raises(ValueError, match="non-negative, finite loss"):
        opt.step(lambda: torch.tensor(bad))
    assert p.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ngn_unvalidated_bad_loss_poisons_the_step(backend):
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    opt = NGN([p], backend=backend)
    opt.step(loss=torch.tensor(-1.0), validate=False)
    assert math.isnan(opt.last_step_sizes()[0]) and torch.isnan(p).all()


def test_ngn_loss_argument_errors():
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    opt = NGN([p])
    with pytest.raises(ValueError, match="exactly one"):
        opt.step()
    with pytest.raises(ValueError, match="exactly one"):
        opt.step(lambda: torch.tensor(1.0), loss=1.0)
    with pytest.raises(ValueError, match="scalar"):
        opt.step(loss=torch.ones(3))
    with pytest.raises(ValueError, match="float or a tensor"):
        opt.step(loss="1.0")


def test_ngn_rejects_parameters_on_several_devices():
    cpu = torch.nn.Parameter(torch.ones(2))
    meta = torch.nn.Parameter(torch.ones(2, device="meta"))
    cpu.grad, meta.grad = torch.ones(2), torch.ones(2, device="meta")
    with pytest.raises(ValueError, match="one device"):
        NGN([cpu, meta]).step(loss=1.0)


def test_ngn_closure_runs_with_grad_enabled():
    p = torch.nn.Parameter(torch.tensor([2.0]))
    opt = NGN([p], sigma=0.1)

    def closure():
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    with torch.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 4.0 and p.item() < 2.0


def test_triton_backend_errors(monkeypatch):
    p64 = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    p64.grad = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="float32, bfloat16 and float16"):
        AdamW([p64], backend="triton").step()
    strided = torch.nn.Parameter(torch.randn(4, 6)[:, ::2])
    strided.grad = torch.randn(4, 3)
    with pytest.raises(ValueError, match="dense"):
        AdamW([strided], backend="triton").step()
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="CUDA"):
        NGN([p], backend="triton").step(loss=1.0)


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_adamw_on_cuda(dtype):
    torch.manual_seed(0)
    shapes = [(1 << 22,), (4097, 33)] + [(int(n),) for n in torch.randint(1, 5000, (1000,))]
    params = [torch.randn(s, device="cuda").to(dtype) for s in shapes]
    grads = [torch.randn(s, device="cuda").to(dtype) for s in shapes]
    ref_params, fused_params = clone_all(params), clone_all(params)
    ref_state, fused_state = adamw_state(params), adamw_state(params)
    hp = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1)
    for _ in range(10):
        adamw_step_ref(ref_params, grads, *ref_state, **hp)
        T.adamw_step_triton(fused_params, grads, *fused_state, **hp)
    torch.cuda.synchronize()
    # bf16: both round the fp32 result once per step; allow one ulp of difference.
    bound = ATOL_FP32 if dtype == torch.float32 else 2.0**-7
    assert_close_fp32([p.float() for p in fused_params], [p.float() for p in ref_params], bound)


@pytest.mark.gpu
def test_fused_ngn_on_cuda_matches_reference_with_no_sync():
    torch.manual_seed(0)
    shapes = [(1 << 22,)] + [(int(n),) for n in torch.randint(1, 5000, (1000,))]
    params = [torch.randn(s, device="cuda") for s in shapes]
    grads = [torch.randn(s, device="cuda") for s in shapes]
    ref_params, fused_params = clone_all(params), clone_all(params)
    loss = torch.tensor(3.0, device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        g_fused = T.ngn_step_triton(fused_params, grads, loss, sigma=1.0, momentum=0.0)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    g_ref = ngn_step_ref(ref_params, grads, loss, sigma=1.0)
    assert g_fused.item() == pytest.approx(g_ref.item(), rel=1e-5)
    assert_close_fp32(fused_params, ref_params)

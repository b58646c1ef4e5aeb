"""The step plan and the fused steps' device tables: built once, pointed at new gradients
when they move, rebuilt only when the parameter set changes; the one-launch AdamW step
that counts its own steps; NGN's update moving a step to another γ; ``capturable``."""

import copy
import weakref
from unittest import mock

import pytest
import torch
from optim_helpers import (
    ATOL_FP16,
    ATOL_FP32,
    Net,
    adamw_state,
    assert_close_fp32,
    awkward_tensors,
    chunk_for,
    clone_all,
    data,
    launches,
    one_thread,  # noqa: F401 (an autouse fixture)
)

from kernels.optim import NGN, AdamW, adamw_step_ref, step_optimizer
from kernels.optim import table as table_module
from kernels.optim import triton_optim as T
from kernels.optim.reference import ngn_update_ref


def mse(model, x, y):
    return torch.nn.functional.mse_loss(model(x), y)


class TableCounts:
    """Counts tables built and address rows rewritten while active."""

    def __enter__(self):
        real_set = table_module.LaunchTable.set_addresses
        self.built = mock.patch.object(T, "LaunchTable", wraps=table_module.LaunchTable)
        self.rewritten = mock.patch.object(
            table_module.LaunchTable, "set_addresses", autospec=True, side_effect=real_set
        )
        self.built_mock, self.rewritten_mock = self.built.start(), self.rewritten.start()
        return self

    def counts(self):
        return self.built_mock.call_count, self.rewritten_mock.call_count

    def __exit__(self, *exc):
        self.built.stop()
        self.rewritten.stop()


# --------------------------------------------------------------------------- plan


@pytest.mark.parametrize("set_to_none", [False, True])
def test_tables_are_built_once_and_follow_moving_gradients(set_to_none):
    ours = Net()
    theirs = copy.deepcopy(ours)
    opt = AdamW(ours.groups(), lr=1e-2, backend="triton")
    ref = torch.optim.AdamW(theirs.groups(), lr=1e-2)
    x, y = data()
    with TableCounts() as tables:
        for step in range(5):
            for model, o in ((ours, opt), (theirs, ref)):
                o.zero_grad(set_to_none=set_to_none)
                mse(model, x, y).backward()
                o.step()
            built, rewritten = tables.counts()
            assert built == 3  # one per group (one dtype each), at the first step
            # New gradient tensors each step: one gradient row per table rewritten.
            assert rewritten == (3 * step if set_to_none else 0)
    assert_close_fp32(list(ours.parameters()), list(theirs.parameters()))


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_a_gradient_moved_through_data_is_followed(backend):
    ours = Net()
    theirs = copy.deepcopy(ours)
    opt = AdamW(ours.parameters(), lr=1e-2, backend=backend)
    ref = torch.optim.AdamW(theirs.parameters(), lr=1e-2)
    x, y = data()
    for step in range(4):
        for model, o in ((ours, opt), (theirs, ref)):
            o.zero_grad(set_to_none=False)
            mse(model, x, y).backward()
            if step % 2:
                g = model.fc2.weight.grad
                g.data = torch.full_like(g, 0.01)  # the same tensor, new storage
            o.step()
    assert_close_fp32(list(ours.parameters()), list(theirs.parameters()))


def test_the_plan_is_rebuilt_when_the_parameter_set_or_the_state_changes():
    model = Net()
    opt = AdamW([{"params": model.fc1.parameters()}], lr=1e-2, backend="triton")
    x, y = data()

    def step():
        opt.zero_grad(set_to_none=False)
        mse(model, x, y).backward()
        opt.step()

    with TableCounts() as tables:
        step()
        step()
        assert tables.counts()[0] == 1
        opt.add_param_group({"params": model.fc2.parameters()})
        step()
        assert tables.counts()[0] == 3  # both groups again
        opt.load_state_dict(opt.state_dict())
        step()
        assert tables.counts()[0] == 5
        model.fc1.bias.grad = None  # a parameter without a gradient now
        opt.step()
        assert tables.counts()[0] == 7
    assert [s["step"].item() for s in opt.state.values()] == [5.0, 4.0, 3.0, 3.0]


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize(
    "make",
    [lambda p, b: AdamW(p, backend=b), lambda p, b: NGN(p, backend=b),
     lambda p, b: NGN(p, backend=b, one_pass=True)],
    ids=["adamw", "ngn", "ngn-one-pass"],
)  # fmt: skip
def test_the_plan_keeps_no_gradient_alive_between_steps(make, backend):
    # zero_grad() must free the gradients then, not at the next step: else a backward
    # would hold two sets of gradients at once.
    model = Net()
    opt = make(model.parameters(), backend)
    x, y = data()
    for _ in range(2):
        loss = mse(model, x, y)
        loss.backward()
        opt.step(loss=loss) if isinstance(opt, NGN) else opt.step()
        grads = [weakref.ref(p.grad) for p in model.parameters()]
        opt.zero_grad()
        assert all(g() is None for g in grads)


def test_cpu_adamw_counts_steps_in_one_tensor_and_keeps_torch_adamws_state_layout():
    model = Net()
    opt = AdamW(model.parameters(), lr=1e-2)
    x, y = data()
    for _ in range(3):
        opt.zero_grad()
        mse(model, x, y).backward()
        opt.step()
    steps = [s["step"] for s in opt.state.values()]
    assert all(s.shape == () and s.dtype == torch.float32 for s in steps)
    assert len({s.untyped_storage().data_ptr() for s in steps}) == 1  # views of one tensor
    theirs = torch.optim.AdamW(model.parameters(), lr=1e-2)
    theirs.load_state_dict(opt.state_dict())
    assert [s["step"].item() for s in theirs.state.values()] == [3.0] * len(steps)


# --------------------------------------------------------------------------- one launch


def test_adamw_is_one_launch_that_counts_every_tensors_steps():
    # Tensors over several programs, empty ones, 100 tiny ones: every count moves by one
    # per step, read before it moves (the results match the reference's).
    params, grads = awkward_tensors()
    ref_params, fused_params = clone_all(params), clone_all(params)
    ref_state, fused_state = adamw_state(params), adamw_state(params)
    hp = dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1)
    step = T.AdamWStep(fused_params, grads, *fused_state, chunk=chunk_for(torch.float32))
    before = launches("adamw")
    for _ in range(3):
        adamw_step_ref(ref_params, grads, *ref_state, **hp)
        step(grads, **hp)
    assert launches("adamw") - before == 3
    assert [s.item() for s in fused_state[2]] == [3.0] * len(params)
    assert_close_fp32(fused_params, ref_params)
    assert_close_fp32(fused_state[1], ref_state[1])


def test_adamw_of_empty_tensors_alone_still_counts_their_steps():
    params = [torch.zeros(0), torch.zeros(0)]
    state = adamw_state(params)
    T.adamw_step_triton(params, clone_all(params), *state, 1e-3, 0.9, 0.999, 1e-8, 0.0)
    assert [s.item() for s in state[2]] == [1.0, 1.0]


@pytest.mark.parametrize(
    "dtype,momentum", [(torch.float32, 0.0), (torch.float32, 0.8), (torch.float16, 0.8)]
)
def test_ngn_update_moves_a_step_taken_to_another_gamma(dtype, momentum):
    # A step with γ0, then moved to γ1, equals the step with γ1 (to round-off), for p and
    # the momentum buffer; with γ1 = γ0 the move launch leaves everything as it is.
    params, grads = awkward_tensors(dtype)
    buffers = lambda: [torch.full_like(p, 0.25, dtype=torch.float32) for p in params]
    ref_params, fused_params = clone_all(params), clone_all(params)
    ref_bufs, fused_bufs = buffers(), buffers()
    step = T.NgnStep(fused_params, grads, fused_bufs if momentum else None, chunk=chunk_for(dtype))
    gamma0, gamma1 = torch.tensor(0.37), torch.tensor(0.11)
    read = step(grads, gamma0, 0.1, momentum, sq_norm=True)
    expected = sum(g.float().square().sum() for g in grads)
    assert read.item() == pytest.approx(expected.item(), rel=1e-5)
    step(grads, gamma1, 0.1, momentum, taken=gamma0)
    ngn_update_ref(ref_params, grads, ref_bufs, gamma1, 0.1, momentum)
    bound = ATOL_FP32 if dtype == torch.float32 else 2 * ATOL_FP16  # rounded twice
    assert_close_fp32(fused_params, ref_params, bound)
    if momentum:
        assert_close_fp32(fused_bufs, ref_bufs)
    moved = clone_all(fused_params)
    step(grads, gamma1, 0.1, momentum, taken=gamma1)
    assert all(torch.equal(a, b) for a, b in zip(fused_params, moved, strict=True))


# --------------------------------------------------------------------------- capturable


def test_capture_needs_capturable(monkeypatch):
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    monkeypatch.setattr(step_optimizer, "capturing", lambda: True)
    with pytest.raises(RuntimeError, match="capture.*AdamW.*capturable is False"):
        AdamW([p]).step()
    with pytest.raises(RuntimeError, match="capture.*NGN.*capturable is False"):
        NGN([p]).step(loss=1.0)
    AdamW([p], capturable=True).step()
    with pytest.raises(ValueError, match="validate=True.*capture"):
        NGN([p], capturable=True).step(loss=torch.tensor(1.0), validate=True)
    NGN([p], capturable=True).step(loss=torch.tensor(1.0))


def test_capturable_ngn_checks_the_loss_on_the_device():
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    opt = NGN([p], capturable=True)
    assert opt.param_groups[0]["capturable"] and opt.state_dict()["param_groups"][0]["capturable"]
    opt.step(loss=torch.tensor(-1.0))  # no host read of the loss: a NaN step instead
    assert p.isnan().all()
    with pytest.raises(ValueError, match="non-negative"):
        NGN([p]).step(loss=torch.tensor(-1.0))


def test_state_dicts_without_capturable_load():
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    opt = AdamW([p])
    opt.step()
    saved = opt.state_dict()
    del saved["param_groups"][0]["capturable"]
    again = AdamW([p], capturable=True)
    again.load_state_dict(saved)
    again.step()
    assert again.param_groups[0]["capturable"] is False
    assert again.state[p]["step"].item() == 2.0


# --------------------------------------------------------------------------- GPU


def captured_training(make, steps: int):
    """A model trained by ``steps`` replays of a captured step, and a copy trained by as
    many eager steps, from the same warm-up (the recipe of torch.cuda.graphs' docs)."""
    torch.manual_seed(0)
    ours = Net().cuda()
    theirs = copy.deepcopy(ours)
    x, y = (t.cuda() for t in data())
    opts = [make(ours.parameters()), make(theirs.parameters())]

    def train_step(model, opt):
        loss = mse(model, x, y)
        loss.backward()
        opt.step(loss=loss) if isinstance(opt, NGN) else opt.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            for model, opt in zip((ours, theirs), opts, strict=True):
                opt.zero_grad(set_to_none=True)
                train_step(model, opt)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opts[0].zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        train_step(ours, opts[0])
    for _ in range(steps):
        graph.replay()
        opts[1].zero_grad(set_to_none=True)
        train_step(theirs, opts[1])
    torch.cuda.synchronize()
    return ours, theirs


@pytest.mark.gpu
@pytest.mark.parametrize(
    "make",
    [lambda p: AdamW(p, lr=1e-2, capturable=True), lambda p: NGN(p, sigma=0.5, capturable=True)],
    ids=["adamw", "ngn"],
)
def test_a_captured_step_replays_as_eager_steps(make):
    ours, theirs = captured_training(make, steps=20)
    assert_close_fp32(list(ours.parameters()), list(theirs.parameters()), 1e-5)

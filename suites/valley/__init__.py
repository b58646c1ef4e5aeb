"""The ``valley`` suite: which minimum an optimizer ends in (thesis §6.3–6.4).

The widening valley of Thm 6.3.2 (score: Hessian trace where the run leaves the
theorem's domain) and a two-layer linear network at hidden widths 30, 300 and 3000
(score: the regularized loss ``f_σ^eff`` of Eq. 172), the width sweep of §6.4.
Held-out variants (``variants``): the valley in another dimension, the network at another
width and on another draw of the data.
"""

import dataclasses
import re

from suites.api import Budget
from suites.valley.linear_net import METRIC as LINEAR_NET_METRIC
from suites.valley.linear_net import LinearNetTask
from suites.valley.widening import METRIC as VALLEY_METRIC
from suites.valley.widening import WideningValleyTask

DEMO_TASKS = ("valley",)
POSITION = 20
PLOT_LABELS = {
    "hessian_trace": "Hessian trace Tr ∇²f",
    "u_sq_norm": "‖u‖²",
    "v_sq": "v²",
    "effective_loss": "effective loss f_σ^eff",
}
#: Anti-PGD in the exact setting of Thm 6.3.2 (η = α/(2D)) needs about 5,000 steps to
#: leave through the flat side; with an 8× larger step it takes about 450.
VALLEY_BUDGET = Budget(smoke=100, quick=600, full=10_000)
LINEAR_NET_BUDGET = Budget(smoke=50, quick=500, full=5_000)
#: Hidden widths of the linear network (Fig. 58–59): GRASP's σ⁴d₁ variance grows with them.
LINEAR_NET_WIDTHS = (30, 300, 3000)


def tasks() -> list:
    valley = WideningValleyTask(
        name="valley/widening",
        description=(
            "Widening valley f(u, v) = ½v²‖u‖², u ∈ R^100, in the setting of Thm 6.3.2 "
            "(d = 100, α = 0.25, D = 100): the run starts at a gradient-descent solution "
            "(u₀, 0) with ‖u₀‖² = 100 and stops when ‖u‖² leaves (25, 400). Score: the "
            "Hessian trace 100·v² + ‖u‖² there (lower = flatter minimum); a run whose loss "
            "ends above ½σ²D = 6.25 (σ² = αD/(2d)) has not settled in the valley and fails. "
            "Thesis §6.3.2, Fig. 56–57: the gradient is zero at the start, so gradient "
            "methods stay at trace 100; PGD drifts to sharper minima (‖u‖² > 400) since "
            "d ≥ 2/α², Anti-PGD and GRASP move to flatter ones (‖u‖² < 25)."
        ),
        budgets=VALLEY_BUDGET,
        metric=VALLEY_METRIC,
    )
    nets = [
        LinearNetTask(
            name=f"valley/linear-net-w{width}",
            description=linear_net_description(width),
            budgets=LINEAR_NET_BUDGET,
            metric=LINEAR_NET_METRIC,
            width=width,
        )
        for width in LINEAR_NET_WIDTHS
    ]
    return [valley, *nets]


def linear_net_description(width: int) -> str:
    return (
        f"Two-layer linear network, {width} hidden units, on sparse synthetic "
        "regression (40 Gaussian points in R^10, y = x₁ + x₂), full batch. Score: the "
        "regularized loss f_σ^eff of Eq. 172 at σ = 0.1 after the budget, "
        "f + (σ²/2n)[‖W₁Xᵀ‖²_F + ‖W₂‖²_F‖X‖²_F] (lower is better) — the objective "
        "that noise injection of scale σ minimizes in expectation, a nuclear-norm "
        "penalty on W₂W₁, whose minimum does not depend on the width. Thesis §6.4, "
        "Fig. 58–59: gradient descent fits the data but ignores the penalty; GRASP's "
        "noise on both layers adds a variance that grows with the width and keeps it "
        "away from the minimizer; L-GRASP, perturbing one layer at a time with √2σ, "
        "approaches it at every width."
    )


#: The held-out valley's dimension: Thm 6.3.2 still holds (d ≥ 2/α² = 32), with half the
#: public task's largest Anti-PGD noise, σ² ≤ αD/(2d).
VARIANT_VALLEY_DIM = 200
#: The held-out network's width, between the public 300 and 3000, and the data draw of the
#: held-out network on the public width 300.
VARIANT_NET_WIDTH = 1000
VARIANT_DATA_SEED = 1


def _held_out(tuned_on: str, what_differs: str) -> str:
    return (f"Held-out variant of {tuned_on} (never tuned on; it runs with the configuration "
            f"tuned there): {what_differs}. ")


def variants() -> list:
    """Held-out valley tasks, never tuned on (``tuned_on`` names the public task whose tuned
    configuration each runs with)."""
    valley = WideningValleyTask(
        name=f"valley/widening-d{VARIANT_VALLEY_DIM}", description="", budgets=VALLEY_BUDGET,
        metric=VALLEY_METRIC, dim=VARIANT_VALLEY_DIM, tuned_on="valley/widening",
    )
    d, alpha, D = valley.dim, valley.alpha, valley.start_sq_norm
    public_dim = WideningValleyTask.dim
    valley = dataclasses.replace(valley, description=_held_out(
        "valley/widening",
        f"u ∈ R^{d} instead of R^{public_dim}. Thm 6.3.2 still applies "
        f"(d ≥ 2/α² = {2 / alpha**2:g}): PGD should leave through the sharp side; Anti-PGD's "
        f"flat exit needs σ² ≤ αD/(2d) = {alpha * D / (2 * d):g} (public: "
        f"{alpha * D / (2 * public_dim):g}), and the loss tolerance is ½σ²D = "
        f"{valley.loss_tolerance:g}",
    ) + f"Otherwise as valley/widening: start (u₀, 0) with ‖u₀‖² = {D:g}, stop when ‖u‖² "
        f"leaves ({alpha * D:g}, {D / alpha:g}), score the Hessian trace d·v² + ‖u‖² there "
        "(lower = flatter).")
    wider = LinearNetTask(
        name=f"valley/linear-net-w{VARIANT_NET_WIDTH}",
        description=_held_out(
            "valley/linear-net-w3000",
            f"{VARIANT_NET_WIDTH} hidden units, between the public widths 300 and 3000",
        ) + linear_net_description(VARIANT_NET_WIDTH),
        budgets=LINEAR_NET_BUDGET,
        metric=LINEAR_NET_METRIC,
        width=VARIANT_NET_WIDTH,
        tuned_on="valley/linear-net-w3000",
    )
    other_data = LinearNetTask(
        name=f"valley/linear-net-w300-data-seed-{VARIANT_DATA_SEED}",
        description=_held_out(
            "valley/linear-net-w300",
            f"another draw of the 40 points (data seed {VARIANT_DATA_SEED} instead of 0)",
        ) + linear_net_description(300),
        budgets=LINEAR_NET_BUDGET,
        metric=LINEAR_NET_METRIC,
        width=300,
        data_seed=VARIANT_DATA_SEED,
        tuned_on="valley/linear-net-w300",
    )
    return [valley, wider, other_data]


def task_axis(task_name: str) -> tuple[str, float, str] | None:
    """The linear network's hidden width: ``("width", 300, "")`` (one panel)."""
    match = re.fullmatch(r"valley/linear-net-w(\d+)", task_name)
    return ("width", int(match.group(1)), "") if match else None

"""The ``valley`` suite: which minimum an optimizer ends in (thesis §6.3–6.4).

The widening valley of Thm 6.3.2 (score: Hessian trace where the run leaves the
theorem's domain) and a wide two-layer linear network (score: the regularized loss
``f_σ^eff`` of Eq. 172).
"""

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
    net = LinearNetTask(
        name="valley/linear-net",
        description=(
            "Two-layer linear network, 300 hidden units, on sparse synthetic regression "
            "(40 Gaussian points in R^10, y = x₁ + x₂), full batch. Score: the regularized "
            "loss f_σ^eff of Eq. 172 at σ = 0.1 after the budget, "
            "f + (σ²/2n)[‖W₁Xᵀ‖²_F + ‖W₂‖²_F‖X‖²_F] (lower is better) — the objective "
            "that noise injection of scale σ minimizes in expectation, a nuclear-norm "
            "penalty on W₂W₁. Thesis §6.4, Fig. 58–59: gradient descent fits the data but "
            "ignores the penalty; GRASP's noise on both layers adds a variance that grows "
            "with the width and keeps it away from the minimizer; L-GRASP, perturbing one "
            "layer at a time with √2σ, approaches it."
        ),
        budgets=LINEAR_NET_BUDGET,
        metric=LINEAR_NET_METRIC,
    )
    return [valley, net]

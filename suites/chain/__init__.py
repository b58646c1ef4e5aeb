"""The ``chain`` suite: escaping the plateaus of deep, narrow models (thesis §3.2).

Neural chains ``½(1 − w_L⋯w_1)²`` of depth 4–64 from a constant and a uniform start
(score: gradient evaluations to escape), and a deep narrow ReLU MLP on scikit-learn's digits (score:
train loss after the budget). Held-out variants (``variants``): chains of depths between
the public ones, from another stream of starting points.
"""

import re

from suites.api import Budget, Metric
from suites.chain.deep_mlp import DeepMLPTask
from suites.chain.neural_chain import METRIC, ChainTask, chain_description, variant_description

DEMO_TASKS = ("chain",)
POSITION = 10
PLOT_LABELS = {"evals_to_escape": "gradient evaluations to escape"}
DEPTHS = (4, 8, 16, 32, 64)
INITS = ("const", "uniform")
#: At quick, gradient descent leaves the constant chain at depths 4 and 8 (about 30 steps)
#: and no deeper; at full also at depth 16 (about 5,800); RMSprop takes under 20 steps at
#: every depth.
CHAIN_BUDGET = Budget(smoke=50, quick=300, full=20_000)
MLP_BUDGET = Budget(smoke=10, quick=100, full=2_000)


def tasks() -> list:
    chains = [
        ChainTask(
            name=f"chain/depth-{depth}-{init}",
            description=chain_description(depth, init),
            budgets=CHAIN_BUDGET,
            metric=METRIC,
            depth=depth,
            init=init,
        )
        for init in INITS
        for depth in DEPTHS
    ]
    mlp = DeepMLPTask(
        name="chain/deep-mlp",
        description=(
            "Deep narrow ReLU MLP (32 hidden layers of width 32, He init, no normalization, "
            "no residual connections) on scikit-learn's 8×8 digits, minibatches of 64. Score: "
            "cross-entropy on the whole training set after the budget (lower is better); test "
            "accuracy and the steps to 80% test accuracy are recorded too. Thesis §3.2, "
            "Fig. 24: the signal crosses many narrow layers, so gradients start tiny and SGD "
            "stays on the initial plateau, while RMSprop/Adam rescale them and train."
        ),
        budgets=MLP_BUDGET,
        metric=Metric(name="train_loss", higher_is_better=False, unit="nats",
                      must_beat_initial=True),
    )
    return chains + [mlp]


#: Depths of the held-out chains, per initialisation: between the public ``DEPTHS``.
VARIANT_DEPTHS = {"const": (12, 24, 48), "uniform": (12,)}
#: The held-out chains' starting points come from this seed stream (the public ones: 0).
VARIANT_SEED_STREAM = 1


def variants() -> list:
    """Held-out chains, never tuned on: each runs with the configuration tuned on the next
    deeper public chain of its initialisation, from starts no public run draws."""
    chains = []
    for init, depths in VARIANT_DEPTHS.items():
        for depth in depths:
            tuned_on = f"chain/depth-{min(d for d in DEPTHS if d > depth)}-{init}"
            chains.append(ChainTask(
                name=f"chain/depth-{depth}-{init}",
                description=variant_description(depth, init, tuned_on),
                budgets=CHAIN_BUDGET,
                metric=METRIC,
                depth=depth,
                init=init,
                seed_stream=VARIANT_SEED_STREAM,
                tuned_on=tuned_on,
            ))
    return chains


def task_axis(task_name: str) -> tuple[str, float, str] | None:
    """The chains' depth, one panel per initialisation: ``("depth", 8, "init: const")``."""
    match = re.fullmatch(r"chain/depth-(\d+)-(\w+)", task_name)
    return ("depth", int(match.group(1)), f"init: {match.group(2)}") if match else None

"""The ``chain`` suite: escaping the plateaus of deep, narrow models (thesis §3.2).

Neural chains ``½(1 − w_L⋯w_1)²`` of depth 4–64 from a constant and a uniform start
(score: steps to escape), and a deep narrow ReLU MLP on scikit-learn's digits (score:
train loss after the budget).
"""

import re

from suites.api import Budget, Metric
from suites.chain.deep_mlp import DeepMLPTask
from suites.chain.neural_chain import METRIC, ChainTask, chain_description

DEMO_TASKS = ("chain",)
POSITION = 10
PLOT_LABELS = {"steps_to_escape": "steps to escape"}
DEPTHS = (4, 8, 16, 32, 64)
INITS = ("const", "uniform")
#: At quick, gradient descent leaves the constant chain at depths 4 and 8 (about 60 steps)
#: and no deeper; at full also at depth 16 (about 6,000); RMSprop and Adam take under 100
#: steps at every depth.
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
        metric=Metric(name="train_loss", higher_is_better=False, unit="nats"),
    )
    return chains + [mlp]


def task_axis(task_name: str) -> tuple[str, float, str] | None:
    """The chains' depth, one panel per initialisation: ``("depth", 8, "init: const")``."""
    match = re.fullmatch(r"chain/depth-(\d+)-(\w+)", task_name)
    return ("depth", int(match.group(1)), f"init: {match.group(2)}") if match else None

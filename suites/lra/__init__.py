"""The ``lra`` suite: Long Range Arena tasks trained with a deep LRU (thesis §5.3, App. E).

The model (``suites.lra.model``) is the Linear Recurrent Unit with the stable
exponential parameterization, ring initialization and γ normalization; its recurrent
parameters train with a task-specific fraction of the optimizer's step size and no
weight decay (Table 9). Data come from the LRA release's files or, for ListOps, from
the release's generator (``suites.lra.data``).
"""

from suites.api import Budget
from suites.lra.listops import LR_FACTOR, SCALES, ListOpsTask
from suites.lra.task import TEST_ACCURACY

#: Quick: about 1,000 steps of a 2-block LRU, two minutes on two CPU cores; full: Table 9.
LISTOPS_BUDGET = Budget(smoke=20, quick=1_000, full=80_000)


def tasks() -> list:
    listops = ListOpsTask(
        name="lra/listops",
        description=(
            "ListOps (LRA): the value 0–9 of a nested expression of MIN, MAX, MED and SM "
            "(sum mod 10) over digits, read token by token by a deep LRU with mean pooling. "
            "Score: test accuracy (higher is better). Smoke and quick budgets use short "
            "generated expressions (depth ≤ 4, lengths 21–79) and a 2-block LRU; full uses "
            "the LRA release (lengths 500–2000) and Table 9's model (6 blocks, H 128, N 256). "
            "Recurrent parameters (Λ, γ, B) get half the step size and no weight decay "
            "(Table 9). Thesis §5.3, Table 5: the LRU reaches 60.2% at full scale."
        ),
        budgets=LISTOPS_BUDGET,
        metric=TEST_ACCURACY,
        lr_factor=LR_FACTOR,
        scales=SCALES,
    )
    return [listops]

"""The ``lra`` suite: Long Range Arena tasks trained with a deep LRU (thesis §5.3, App. E).

The model (``suites.lra.model``) is the Linear Recurrent Unit with the stable
exponential parameterization, ring initialization and γ normalization; its recurrent
parameters train with a task-specific fraction of the optimizer's step size and no
weight decay (Table 9). Tuning picks the configuration by validation accuracy; the
score is test accuracy. ListOps and Pathfinder data are generated (``suites.lra.data``)
or read from the LRA release; Text, Retrieval and Image need the release's files.
Held-out variants (``variants``): other draws of the generated ListOps and Pathfinder data,
and longer ListOps expressions, at the smoke and quick budgets.
"""

import dataclasses

from suites.api import Budget
from suites.lra import files, listops
from suites.lra.cli import add_commands, add_options, apply_options
from suites.lra.pathfinder import pathfinder_tasks, pathfinder_variants
from suites.lra.task import SCORE_NOTE, TEST_ACCURACY

__all__ = [
    "DEMO_TASKS", "POSITION", "add_commands", "add_options", "apply_options", "tasks", "variants",
]

POSITION = 30
#: ``lsb demo`` trains the LRU on ListOps (about 20 s a run at quick, two at once on 2 cores).
DEMO_TASKS = ("lra/listops",)


def data_directories() -> list:
    """The release's data root and the cache of generated data sets (what a sandboxed
    worker may read)."""
    from suites.lra.data.release import cache_dir, default_root

    return [default_root(), cache_dir()]
_SCORE = SCORE_NOTE
_TABLE_9 = "full: Table 9's model, weight decay 0.05. "


def tasks() -> list:
    return [
        listops.ListOpsTask(
            name="lra/listops",
            description=(
                "ListOps (LRA): the value 0–9 of a nested expression of MIN, MAX, MED and SM "
                "(sum mod 10) over digits, read token by token by a deep LRU with mean "
                f"pooling. {_SCORE}Smoke and quick budgets use short generated expressions "
                "(depth ≤ 4, lengths 21–79) and a 2-block LRU, 600 steps at quick: they "
                "show whether an optimizer trains a deep LRU at all, well above the 13% "
                "majority class. Full reads the LRA release (lengths 500–2000) or what "
                f"`lsb data listops` writes; {_TABLE_9}Recurrent parameters (Λ, γ, B) get half "
                "the step size (Table 9). Thesis §5.3, Table 5: the LRU reaches 60.2%."
            ),
            budgets=Budget(smoke=20, quick=600, full=80_000),
            metric=TEST_ACCURACY,
            lr_factor=listops.LR_FACTOR,
            scales=listops.SCALES,
        ),
        files.TextTask(
            name="lra/text",
            description=(
                "Text (LRA): IMDB review sentiment from raw bytes (up to 4,096). "
                f"{_SCORE}Needs the IMDB release (aclImdb/) under the LRA data root. Smoke "
                "and quick train a 2-block LRU on 4,000 reviews cut to 512 bytes; "
                f"{_TABLE_9}Thesis §5.3, Table 5: the LRU reaches 89.4%."
            ),
            budgets=Budget(smoke=20, quick=600, full=50_000),
            metric=TEST_ACCURACY,
            lr_factor=0.1,
            scales=files.TEXT_SCALES,
        ),
        files.RetrievalTask(
            name="lra/retrieval",
            description=(
                "Retrieval (LRA): whether one ACL paper cites another, from both documents' "
                f"bytes (4,000 each) through one LRU tower. {_SCORE}Needs the release's "
                "tsv_data/. Smoke and quick train on 4,000 pairs cut to 256 bytes; "
                f"{_TABLE_9}Thesis §5.3, Table 5: the LRU reaches 89.9%."
            ),
            budgets=Budget(smoke=20, quick=600, full=100_000),
            metric=TEST_ACCURACY,
            lr_factor=0.5,
            scales=files.RETRIEVAL_SCALES,
        ),
        files.ImageTask(
            name="lra/image",
            description=(
                "Image (sCIFAR): the CIFAR-10 class from the 1,024 pixels in raster order, "
                f"colour as in the LRU paper. {_SCORE}Needs cifar-10-batches-py/. Smoke and "
                f"quick train on 4,000 images; {_TABLE_9}"
                "Thesis §5.3, Table 5: the LRU reaches 89.0%."
            ),
            budgets=Budget(smoke=20, quick=600, full=180_000),
            metric=TEST_ACCURACY,
            lr_factor=0.25,
            scales=files.IMAGE_SCALES,
        ),
        *pathfinder_tasks(),
    ]


#: The longer expressions of the held-out lra/listops-len-120: one level deeper, and up to
#: 119 tokens instead of 79. Batches are cut to their longest expression, 64 tokens on
#: average against the public task's 45, so a step costs about 1.4 times as much.
LONG_LISTOPS_SETTINGS = {"max_depth": 5, "max_length": 120}
#: The data seed of the held-out lra/listops-seed-1.
LISTOPS_VARIANT_DATA_SEED = 1


def variants() -> list:
    """Held-out LRA tasks, never tuned on: each is its ``tuned_on`` task on generated data
    that no public task trains or tests on, and runs with that task's tuned configuration."""
    public = next(t for t in tasks() if t.name == "lra/listops")

    def held_out(name: str, what_differs: str, **data: object) -> listops.ListOpsTask:
        description = (
            f"Held-out variant of {public.name} (never tuned on; it runs with the "
            f"configuration tuned there): {what_differs}; the same 2-block LRU, budgets and "
            f"score as {public.name} (smoke and quick only: at full the task reads the LRA "
            "release, the public task's own data). Thesis §5.3."
        )
        return dataclasses.replace(public, name=name, description=description,
                                   tuned_on=public.name, **data)

    return [
        held_out(
            "lra/listops-len-120",
            "longer, deeper expressions of the same generator (depth ≤ 5 instead of 4, "
            "lengths 21–119 instead of 21–79), so the LRU must carry values over longer "
            "stretches",
            short_settings=LONG_LISTOPS_SETTINGS,
        ),
        held_out(
            f"lra/listops-seed-{LISTOPS_VARIANT_DATA_SEED}",
            f"another draw of the generator (data seed {LISTOPS_VARIANT_DATA_SEED} instead "
            f"of {listops.SHORT_DATA_SEED}) with the public settings (depth ≤ 4, lengths "
            "21–79)",
            short_data_seed=LISTOPS_VARIANT_DATA_SEED,
        ),
        *pathfinder_variants(),
    ]

"""The ``lra/pathfinder`` and ``lra/pathx`` tasks: are two marked dots joined by a path?

A deep bidirectional LRU reads the image pixel by pixel, row by row (thesis §5.3,
Table 5). At the ``full`` budget the images are the LRA release's (``pathfinder32/
curv_contour_length_14``: 1,024 pixels; Path-X ``pathfinder128``: 16,384), or what
``lsb data pathfinder`` writes in that layout, and the model, batch, steps and LR factor
are Table 9's. The ``smoke`` and ``quick`` budgets train a small LRU for a few hundred
steps on images of the built-in generator (``suites.lra.data.pathfinder``), drawn once
with a fixed seed into the cache directory (``$LSB_DATA_DIR`` or ``~/.cache/lsb``) and
read from there by every later run. Quick Pathfinder draws 16×16 images (256 pixels);
quick Path-X the same pictures magnified to 32×32 (1,024 pixels): the same task on
sequences four times longer, as Path-X is Pathfinder at a larger size.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from suites.api import Budget
from suites.lra.data import pathfinder
from suites.lra.data.pathfinder import PathfinderSettings
from suites.lra.data.sequences import SequenceData
from suites.lra.model import LRUClassifier, LRUConfig
from suites.lra.task import SCORE_NOTE, TEST_ACCURACY, LRATask, ReleaseFiles, Scale, Splits

#: Table 9, PathFinder and PathX: the recurrent parameters' step size is this times the
#: optimizer's.
LR_FACTOR = 0.25
NUM_CLASSES = 2
#: Path-X's ring initialization draws the phases of Λ in [0, π/10] (thesis §5.3).
PATHX_MAX_PHASE = math.pi / 10

#: The generated images of the smoke and quick budgets: two paths of 2 dashes and no
#: distractor in 16×16 pixels; with 3 or more dashes the quick LRU stays at chance.
SMALL_IMAGES = PathfinderSettings(resolution=16, contour_length=2, distractors=0)
#: Generator seeds of the training, validation and test images, added to the task's
#: ``data_seed`` (0 for the public tasks): three draws, each with exactly as many connected
#: as unconnected images, the same for every run seed.
GENERATED_DATA_SEEDS = {"train": 0, "val": 1, "test": 2}

_SMALL_LRU = LRUConfig(d_model=32, d_state=32, depth=2, bidirectional=True)
_TINY_LRU = LRUConfig(d_model=16, d_state=16, depth=1, bidirectional=True)

#: Smoke and quick: a small bidirectional LRU on generated images (train_size images to
#: train on, eval_size each to validate and to test). Full: Table 9.
PATHFINDER_SCALES = {
    "smoke": Scale(_TINY_LRU, 16, 0, train_size=128, eval_size=64),
    "quick": Scale(_SMALL_LRU, 32, 0, train_size=4_000, eval_size=1_000),
    "full": Scale(LRUConfig(d_model=192, d_state=256, depth=6, bidirectional=True), 64,
                  25_000, paper=True),
}
PATHX_SCALES = {
    "smoke": Scale(_TINY_LRU, 8, 0, train_size=64, eval_size=32),
    "quick": Scale(_SMALL_LRU, 16, 0, train_size=4_000, eval_size=400),
    "full": Scale(LRUConfig(d_model=128, d_state=256, depth=6, bidirectional=True,
                            max_phase=PATHX_MAX_PHASE), 32, 12_500, paper=True),
}


@functools.lru_cache(maxsize=2)
def _release(root: Path, resolution: int) -> dict[str, SequenceData]:
    return pathfinder.load(root, resolution)


@dataclass(frozen=True)
class PathfinderTask(LRATask):
    """Test accuracy of a deep bidirectional LRU on Pathfinder images.

    ``resolution``: side of the release's images read at the full budget (Path-X: 128).
    ``generated``: the generator's settings of the smoke and quick images; ``data_seed``:
    the first of their generator seeds (``GENERATED_DATA_SEEDS``).
    """

    resolution: int = 32
    generated: PathfinderSettings = SMALL_IMAGES
    data_seed: int = 0

    def generator_seed(self, split: str) -> int:
        return self.data_seed + GENERATED_DATA_SEEDS[split]

    def release_files(self, budget: str) -> ReleaseFiles | None:
        if budget != "full":
            return None
        generate = "pathfinder" if self.resolution == 32 else (
            f"pathfinder --resolution {self.resolution}"
        )
        return ReleaseFiles(pathfinder.release_dir(self.resolution), ("metadata",), generate)

    def splits(self, budget: str) -> Splits:
        if budget == "full":
            data = _release(self.root, self.resolution)
            return Splits(data["train"], data["val"], data["test"])
        scale = self.scales[budget]
        sizes = {"train": scale.train_size, "val": scale.eval_size, "test": scale.eval_size}
        drawn = {
            split: pathfinder.cached_generate(n, self.generated, seed=self.generator_seed(split))
            for split, n in sizes.items()
        }
        return Splits(**{split: pathfinder.as_sequences(*d) for split, d in drawn.items()})

    def train_split(self, budget: str) -> SequenceData:
        if budget == "full":
            return super().train_split(budget)
        drawn = pathfinder.cached_generate(self.scales[budget].train_size, self.generated,
                                           seed=self.generator_seed("train"))
        return pathfinder.as_sequences(*drawn)

    def build_model(self, scale: Scale) -> nn.Module:
        return LRUClassifier(scale.config, NUM_CLASSES, d_input=1)


_SCORE = SCORE_NOTE
_FULL = "weight decay 0.05; the recurrent parameters (Λ, γ, B) get a quarter of the step size. "


#: The first generator seed of the held-out lra/pathfinder-seed-7's images.
VARIANT_DATA_SEED = 7


def pathfinder_tasks() -> list[PathfinderTask]:
    """``lra/pathfinder`` and ``lra/pathx``."""
    return [
        PathfinderTask(
            name="lra/pathfinder",
            description=(
                "Pathfinder (LRA): are the two marked dots the two ends of one dashed path? "
                "A bidirectional deep LRU reads the image pixel by pixel, row by row. "
                f"{_SCORE}Smoke and quick draw 16×16 images (256 pixels) with two paths of "
                "2 dashes and no distractor, once, into the data cache, and train a 2-block "
                "LRU (H = N = 32) for 200 steps. What quick can show: whether an optimizer "
                "gets the LRU above chance (50%) on the local part of the task, telling "
                "whether a short stroke joins the two marks (scores vary by several points "
                "from seed to seed); what it cannot: following a "
                "path, since with 3 or more dashes the quick LRU stayed at chance in our "
                "trials with AdamW. Full reads the LRA release (pathfinder32, contour length "
                "14, 1,024 pixels) or what `lsb data pathfinder` writes, with Table 9's "
                f"model (6 blocks, H 192, N 256, batch 64, 500k steps); {_FULL}"
                "Thesis §5.3, Table 5: the LRU reaches 95.1%; Table 4: with a dense or a "
                "real + imaginary Λ it stays at chance."
            ),
            budgets=Budget(smoke=10, quick=200, full=500_000),
            metric=TEST_ACCURACY,
            lr_factor=LR_FACTOR,
            scales=PATHFINDER_SCALES,
        ),
        PathfinderTask(
            name="lra/pathx",
            description=(
                "Path-X (LRA): Pathfinder at 128×128, a sequence of 16,384 pixels read by a "
                f"bidirectional deep LRU. {_SCORE}Smoke and quick draw the quick Pathfinder "
                "pictures magnified to 32×32 (1,024 pixels: the same task on sequences four "
                "times longer) and train the same 2-block LRU for 80 steps of batch 16. At "
                "this scale most runs stay at chance (50%) and a few get somewhat above it, "
                "depending on the seed: quick checks that an optimizer trains an LRU on "
                "1,024-step sequences without diverging; it cannot rank optimizers on "
                "Path-X reliably. Full reads the release's pathfinder128 "
                "with Table 9's model (6 blocks, H 128, N 256, batch 32, 250k steps, phases "
                f"of Λ initialized in [0, π/10]); {_FULL}Thesis §5.3, Table 5: the LRU "
                "reaches 94.2% (S4 96.4%, S5 98.6%)."
            ),
            budgets=Budget(smoke=5, quick=80, full=250_000),
            metric=TEST_ACCURACY,
            lr_factor=LR_FACTOR,
            scales=PATHX_SCALES,
            resolution=128,
            generated=SMALL_IMAGES.magnified(32),
        ),
    ]


def pathfinder_variants() -> list[PathfinderTask]:
    """``lra/pathfinder-seed-7``: held out, never tuned on."""
    public = pathfinder_tasks()[0]
    splits = ("train", "val", "test")
    seeds = ", ".join(str(VARIANT_DATA_SEED + GENERATED_DATA_SEEDS[s]) for s in splits)
    public_seeds = ", ".join(str(public.generator_seed(s)) for s in splits)
    description = (
        f"Held-out variant of {public.name} (never tuned on; it runs with the configuration "
        "tuned there): other images of the same generator and settings (16×16, two paths of "
        f"2 dashes, no distractor), drawn with the seeds {seeds} (train, validation, test) "
        f"instead of {public_seeds}; the same bidirectional 2-block LRU, budgets and score as "
        f"{public.name} (smoke and quick only: at full the task reads the LRA release, the "
        "public task's own data). Thesis §5.3."
    )
    return [replace(public, name=f"lra/pathfinder-seed-{VARIANT_DATA_SEED}",
                    description=description, data_seed=VARIANT_DATA_SEED, tuned_on=public.name)]

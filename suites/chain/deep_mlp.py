"""A deep narrow ReLU MLP on scikit-learn's 8×8 digits: the plateau of Fig. 24 in small.

Thesis §3.2 (Fig. 24) trains a 128-layer, width-32 ReLU MLP with He initialization and
no normalization or residual connections on Fashion-MNIST: SGD cannot leave the initial
plateau, RMSprop trains. Here the data set is the 1,797 digits that ship with
scikit-learn (pixels scaled to [0, 1], a fixed stratified train/test split) so the task
runs offline in seconds. Parameters are plain float32 tensors, one weight and one bias
per layer, and the forward pass is a loop of ``linear`` and ``relu`` (no ``nn.Module``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import torch
import torch.nn.functional as F

from suites.api import Problem, Progress
from suites.common import BaseTask

#: The split and the batches do not depend on anything but these seeds and the run seed.
SPLIT_SEED = 0
TEST_FRACTION = 0.25


def digits(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixels, labels) of the ``"train"`` or ``"test"`` split: float32 pixels in [0, 1],
    int64 labels. Each split is made on its own, so a process that trains holds no test
    example (only evaluation asks for the test split)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x / 16.0, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    x, y = {"train": (x_tr, y_tr), "test": (x_te, y_te)}[split]
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)


train_digits = cache(lambda: digits("train"))
test_digits = cache(lambda: digits("test"))


def he_mlp(sizes: list[int], gen: torch.Generator) -> list[torch.Tensor]:
    """[W_1, b_1, …]: ``W ~ N(0, 2/fan_in)`` (He et al., 2015), ``b = 0``."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        w = torch.randn(fan_out, fan_in, generator=gen) * math.sqrt(2.0 / fan_in)
        params += [w.requires_grad_(), torch.zeros(fan_out, requires_grad=True)]
    return params


def mlp_forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    layers = len(params) // 2
    for i in range(layers):
        x = F.linear(x, params[2 * i], params[2 * i + 1])
        if i < layers - 1:
            x = F.relu(x)
    return x


@dataclass(frozen=True)
class DeepMLPTask(BaseTask):
    """Train cross-entropy after the budget; test accuracy and steps to a target on the side."""

    depth: int = 32
    width: int = 32
    batch_size: int = 64
    target_accuracy: float = 0.8
    eval_every: int = 25

    def setup(self, seed: int, budget: str) -> Problem:
        x_tr, y_tr = train_digits()
        steps = self.budgets.steps(budget)
        gen = torch.Generator().manual_seed(seed)
        sizes = [x_tr.shape[1]] + [self.width] * self.depth + [10]
        params = he_mlp(sizes, gen)
        # One fixed batch per step: the same step sees the same examples whatever the
        # optimizer, and a closure called twice in a step sees one batch.
        batches = torch.randint(len(x_tr), (steps, self.batch_size), generator=gen)
        reached_at = [math.inf]

        def loss(step: int) -> torch.Tensor:
            idx = batches[step]
            return F.cross_entropy(mlp_forward(params, x_tr[idx]), y_tr[idx])

        @torch.no_grad()
        def evaluate(progress: Progress) -> dict[str, float]:
            x_te, y_te = test_digits()
            train_out, test_out = mlp_forward(params, x_tr), mlp_forward(params, x_te)
            test_acc = float((test_out.argmax(1) == y_te).double().mean())
            if test_acc >= self.target_accuracy and math.isinf(reached_at[0]):
                reached_at[0] = progress.grad_evals
            return {
                "train_loss": float(F.cross_entropy(train_out, y_tr)),
                "train_accuracy": float((train_out.argmax(1) == y_tr).double().mean()),
                "test_accuracy": test_acc,
                "steps_to_target_accuracy": reached_at[0],
            }

        return Problem(
            param_groups=[{"params": params, "param_names": [
                f"layer{i // 2}.{('weight', 'bias')[i % 2]}" for i in range(len(params))]}],
            loss=loss,
            evaluate=evaluate,
            steps=steps,
            eval_every=self.eval_every,
        )

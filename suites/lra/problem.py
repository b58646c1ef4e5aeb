"""A classification problem of the LRA suite: a deep LRU trained on one split, scored on another."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from suites.api import Problem
from suites.lra.model import lru_param_groups

#: Environment variable naming the device the LRA tasks train on.
DEVICE_ENV_VAR = "LSB_DEVICE"
#: Test examples per forward pass when evaluating.
EVAL_BATCH = 256


def default_device() -> torch.device:
    """``$LSB_DEVICE`` when set (e.g. ``cpu`` to keep a GPU free), else CUDA when present."""
    name = os.environ.get(DEVICE_ENV_VAR)
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def warmup_cosine(steps: int, warmup_fraction: float = 0.1) -> Callable[[int], float]:
    """Step-size multiplier of App. E.3: linear warm-up over the first ``warmup_fraction``
    of the steps, then a cosine decay to 0 at the last step.

    The multiplier at step ``k`` (0-based) is ``(k + 1) / W`` during the ``W`` warm-up
    steps, then ``½ (1 + cos(π (k − W) / (steps − W)))``.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    warmup = int(round(warmup_fraction * steps))
    decay = max(steps - warmup, 1)

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, decay) / decay))

    return multiplier


class Split(Protocol):
    """A split as the problem reads it: ``batch(index)`` is ``(*model inputs, labels)``."""

    def __len__(self) -> int: ...

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor | None, ...]: ...


def classification_problem(
    model: nn.Module,
    train: Split,
    held_out: Callable[[], tuple[Split | None, Split]],
    *,
    steps: int,
    batch_size: int,
    lr_factor: float,
    eval_every: int,
    seed: int,
    lr_schedule: Callable[[int], float] | None = None,
    weight_decay: float | None = None,
    device: torch.device | str | None = None,
) -> Problem:
    """Cross-entropy on minibatches of ``train``; accuracy and loss on the test split (and
    on the validation split when there is one: ``val_accuracy`` is what tuning selects by)
    as the metrics. ``held_out()`` returns (validation or None, test); it is called at the
    first evaluation, so a process that only trains never loads them.

    The recurrent parameters get ``lr_factor`` and no weight decay (Table 9); the batches
    are fixed by ``seed`` in advance, so every optimizer sees the same examples at the
    same step, and a closure called twice in a step sees one batch. ``lr_schedule``
    multiplies the step size per step (e.g. :func:`warmup_cosine`); ``weight_decay``, when
    given, overrides the optimizer's own on the non-recurrent parameters. The model moves
    to ``device`` (default: :func:`default_device`); splits stay in host memory and each
    batch moves when it is used.
    """
    device = torch.device(device) if device is not None else default_device()
    model.to(device)

    def on_device(index: torch.Tensor, split: Split) -> list[torch.Tensor | None]:
        return [None if t is None else t.to(device, non_blocking=True)
                for t in split.batch(index)]

    gen = torch.Generator().manual_seed(seed)
    batches = torch.randint(len(train), (steps, batch_size), generator=gen)

    def loss(step: int) -> torch.Tensor:
        model.train()
        *inputs, labels = on_device(batches[step], train)
        return F.cross_entropy(model(*inputs), labels)

    def measure(split: Split, prefix: str) -> dict[str, float]:
        correct, total_loss = 0, 0.0
        for start in range(0, len(split), EVAL_BATCH):
            index = torch.arange(start, min(start + EVAL_BATCH, len(split)))
            *inputs, labels = on_device(index, split)
            logits = model(*inputs)
            correct += int((logits.argmax(-1) == labels).sum())
            total_loss += float(F.cross_entropy(logits, labels, reduction="sum"))
        n = len(split)
        return {f"{prefix}_accuracy": correct / n, f"{prefix}_loss": total_loss / n}

    loaded: list[tuple[Split | None, Split]] = []

    @torch.no_grad()
    def evaluate() -> dict[str, float]:
        if not loaded:
            loaded.append(held_out())
        val, test = loaded[0]
        # Evaluation mode: batch norm uses its running statistics, dropout is off.
        model.eval()
        metrics = measure(test, "test")
        if val is not None:
            metrics |= measure(val, "val")
        model.train()
        return metrics

    return Problem(
        param_groups=lru_param_groups(model, lr_factor, weight_decay),
        loss=loss,
        evaluate=evaluate,
        steps=steps,
        eval_every=eval_every,
        lr_schedule=lr_schedule,
        state=model.state_dict,
    )

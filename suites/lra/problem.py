"""A classification problem of the LRA suite: a deep LRU trained on one split, scored on another."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from suites.api import Problem
from suites.lra.data.sequences import SequenceData
from suites.lra.model import lru_param_groups

#: Test examples per forward pass when evaluating.
EVAL_BATCH = 256


def classification_problem(
    model: nn.Module,
    train: SequenceData,
    test: SequenceData,
    *,
    steps: int,
    batch_size: int,
    lr_factor: float,
    eval_every: int,
    seed: int,
) -> Problem:
    """Cross-entropy on minibatches of ``train``; test accuracy and loss as the metrics.

    The recurrent parameters get ``lr_factor`` and no weight decay (Table 9); the batches
    are fixed by ``seed`` in advance, so every optimizer sees the same examples at the
    same step, and a closure called twice in a step sees one batch.
    """
    gen = torch.Generator().manual_seed(seed)
    batches = torch.randint(len(train), (steps, batch_size), generator=gen)

    def loss(step: int) -> torch.Tensor:
        model.train()
        inputs, lengths, labels = train.batch(batches[step])
        return F.cross_entropy(model(inputs, lengths), labels)

    @torch.no_grad()
    def evaluate() -> dict[str, float]:
        # Evaluation mode: batch norm uses its running statistics, dropout is off.
        model.eval()
        correct, total_loss = 0, 0.0
        for start in range(0, len(test), EVAL_BATCH):
            index = torch.arange(start, min(start + EVAL_BATCH, len(test)))
            inputs, lengths, labels = test.batch(index)
            logits = model(inputs, lengths)
            correct += int((logits.argmax(-1) == labels).sum())
            total_loss += float(F.cross_entropy(logits, labels, reduction="sum"))
        model.train()
        return {"test_accuracy": correct / len(test), "test_loss": total_loss / len(test)}

    return Problem(
        param_groups=lru_param_groups(model, lr_factor),
        loss=loss,
        evaluate=evaluate,
        steps=steps,
        eval_every=eval_every,
    )

"""The in-memory form of every LRA classification split, and byte-level tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SequenceData:
    """Inputs, true lengths and labels of one split.

    ``inputs``: token ids ``(n, L)`` int64 padded with 0, features ``(n, L, d)``
    float32, or pixels ``(n, L, d)`` uint8, which ``batch`` turns into float32 in [0, 1]
    (a quarter of float32's memory: Path-X's release is 200k sequences of 16,384
    pixels). ``lengths``: ``(n,)`` int64, or None when every sequence has length L.
    ``labels``: ``(n,)`` int64.
    """

    inputs: torch.Tensor
    lengths: torch.Tensor | None
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, count: int | None) -> SequenceData:
        """The first ``count`` examples (all when None)."""
        if count is None:
            return self
        lengths = None if self.lengths is None else self.lengths[:count]
        return SequenceData(self.inputs[:count], lengths, self.labels[:count])

    def draw(self, count: int | None, seed: int) -> torch.Tensor:
        """Indices of ``count`` examples drawn without replacement by ``seed``, in order."""
        if count is None or count >= len(self):
            return torch.arange(len(self))
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        return perm[:count].sort().values

    def take(self, index: torch.Tensor) -> SequenceData:
        lengths = None if self.lengths is None else self.lengths[index]
        return SequenceData(self.inputs[index], lengths, self.labels[index])

    def subset(self, count: int | None, seed: int) -> SequenceData:
        """``count`` examples drawn without replacement by ``seed`` (all when None): a
        class-mixed sample even of files stored class by class."""
        return self.take(self.draw(count, seed))

    def split_off(self, count: int, seed: int) -> tuple[SequenceData, SequenceData]:
        """(the rest, ``count`` examples drawn by ``seed``): a held-out split."""
        drawn = self.draw(count, seed)
        rest = torch.ones(len(self), dtype=torch.bool)
        rest[drawn] = False
        return self.take(rest.nonzero().squeeze(1)), self.take(drawn)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(inputs, lengths, labels) of the examples ``index``, cut to their longest;
        uint8 pixels become float32 in [0, 1]."""
        lengths = None if self.lengths is None else self.lengths[index]
        inputs = self.inputs[index] if lengths is None else \
            self.inputs[index, : int(lengths.max())]
        if inputs.dtype == torch.uint8:
            inputs = inputs.float().div_(255.0)
        return inputs, lengths, self.labels[index]

    @classmethod
    def from_token_lists(
        cls, sequences: Sequence[Sequence[int]], labels: Sequence[int]
    ) -> SequenceData:
        """Pads token-id lists with 0 to the longest."""
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
        tokens = torch.zeros(len(sequences), int(lengths.max()), dtype=torch.int64)
        for i, sequence in enumerate(sequences):
            tokens[i, : len(sequence)] = torch.tensor(sequence, dtype=torch.int64)
        return cls(tokens, lengths, torch.tensor(labels, dtype=torch.int64))


#: Byte-level vocabulary of Text and Retrieval: id = byte + 1, and 0 pads.
BYTE_VOCAB_SIZE = 257


def byte_tokens(text: bytes, max_length: int) -> list[int]:
    """Token ids of the first ``max_length`` bytes of ``text``."""
    return [b + 1 for b in text[:max_length]]

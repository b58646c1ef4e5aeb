"""The deep Linear Recurrent Unit of thesis §5.3 (Orvieto et al., 2023) and its LRA heads.

One LRU layer maps a real sequence ``u_1..u_L`` (features H) through a complex diagonal
recurrence of N states::

    x_k = Λ x_{k−1} + exp(γ_log) ⊙ (B u_k),      y_k = Re(C x_k) + D ⊙ u_k,

with ``λ_j = exp(−exp(ν_log_j) + i exp(θ_log_j))`` (stable exponential parameterization,
§5.3.2: |λ_j| < 1 for every real ν_log), λ initialized uniformly on the ring
``r_min ≤ |λ| ≤ r_max`` (Lemma 5.3.1) and ``γ_log = log √(1 − |λ|²)`` (Thm 5.3.2).
The recurrence runs through :func:`kernels.diag_scan` with Λ shared over batch and time.

The network (App. E.3) is an encoder to H features, residual blocks
``u + dropout(GLU(dropout(GELU(LRU(norm(u))))))``, mean pooling over the true length of
each sequence and a linear head; Retrieval encodes both documents with one tower and
classifies ``[a, b, a − b, a ⊙ b]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from kernels import diag_scan

#: Parameter names of the recurrence that get the task's LR factor and no weight decay
#: (Table 9): Λ (ν_log, θ_log), γ_log and B.
RECURRENT_PARAMETERS = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im")


def ring_init(
    n: int, r_min: float, r_max: float, max_phase: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ν_log, θ_log) with λ uniform on the ring ``r_min ≤ |λ| ≤ r_max`` (Lemma 5.3.1).

    ``u₁, u₂ ~ U[0, 1]``, ``ν = −½ log(u₁ (r_max² − r_min²) + r_min²)``, ``θ = max_phase u₂``:
    then ``|λ|² = exp(−2ν)`` is uniform on ``[r_min², r_max²]``, which is a uniform
    density on the ring's area, and the phase is uniform on ``[0, max_phase]``.
    """
    if not 0.0 <= r_min < r_max <= 1.0:
        raise ValueError(f"need 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
    u1 = torch.rand(n, dtype=torch.float64)
    u2 = torch.rand(n, dtype=torch.float64)
    nu = -0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2)
    theta = max_phase * u2
    # u = 0 would give ν = ∞ (r_min = 0) or θ = 0: log of 0. Both have probability 0 in
    # the lemma; clamping to the smallest positive float keeps the logs finite.
    tiny = torch.finfo(torch.float64).tiny
    return torch.log(nu.clamp_min(tiny)).float(), torch.log(theta.clamp_min(tiny)).float()


class LRU(nn.Module):
    """One Linear Recurrent Unit: real ``(batch, L, H)`` in, real ``(batch, L, H)`` out.

    ``bidirectional=True`` adds a second scan from the end of the sequence with the same
    Λ, γ and B and its own C, and sums the two read-outs (as S5 does for Pathfinder).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        self.d_model, self.d_state, self.bidirectional = d_model, d_state, bidirectional
        nu_log, theta_log = ring_init(d_state, r_min, r_max, max_phase)
        self.nu_log = nn.Parameter(nu_log)
        self.theta_log = nn.Parameter(theta_log)
        # γ = √(1 − |λ|²) = √(1 − exp(−2 exp(ν_log))): each state's stationary power on
        # white-noise input equals that of its input B u (Thm 5.3.2). -expm1 is accurate
        # when |λ| is near 1, where 1 − |λ|² loses every digit in float32.
        self.gamma_log = nn.Parameter(0.5 * torch.log(-torch.expm1(-2 * torch.exp(nu_log))))
        # Glorot for a complex matrix: real and imaginary parts each get half the variance,
        # so E|B_jk|² = 1/H. C's parts each have variance 1/N as in the reference code:
        # Re(C x) keeps half of the power of C x, so the output has the states' mean power.
        b_std, c_std = 1 / math.sqrt(2 * d_model), 1 / math.sqrt(d_state)
        self.B_re = nn.Parameter(torch.randn(d_state, d_model) * b_std)
        self.B_im = nn.Parameter(torch.randn(d_state, d_model) * b_std)
        n_read = 2 if bidirectional else 1
        self.C_re = nn.Parameter(torch.randn(n_read, d_model, d_state) * c_std)
        self.C_im = nn.Parameter(torch.randn(n_read, d_model, d_state) * c_std)
        self.D = nn.Parameter(torch.randn(d_model))

    def eigenvalues(self) -> torch.Tensor:
        """Λ's diagonal, complex ``(N,)``: ``exp(−exp(ν_log) + i exp(θ_log))``."""
        return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))

    def driving_input(self, u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``exp(γ_log) ⊙ (B u_k)``, complex ``(batch, L, N)``; zero where ``mask`` is False."""
        B = torch.complex(self.B_re, self.B_im)
        bu = torch.complex(u, torch.zeros_like(u)) @ B.transpose(0, 1)
        bu = bu * torch.exp(self.gamma_log)
        if mask is not None:
            # Padding must not drive the reverse scan into the true positions.
            bu = bu * mask.unsqueeze(-1)
        return bu

    def forward(self, u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        lam = self.eigenvalues()
        bu = self.driving_input(u, mask)
        C = torch.complex(self.C_re, self.C_im)
        y = (diag_scan(lam, bu) @ C[0].transpose(0, 1)).real
        if self.bidirectional:
            y = y + (diag_scan(lam, bu, reverse=True) @ C[1].transpose(0, 1)).real
        return y + self.D * u


class ResidualBlock(nn.Module):
    """``u + dropout(GLU(dropout(GELU(LRU(norm(u))))))`` (pre-norm, App. E.3)."""

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        norm: Literal["batch", "layer"] = "batch",
        dropout: float = 0.0,
        **lru_options: Any,
    ) -> None:
        super().__init__()
        if norm not in ("batch", "layer"):
            raise ValueError(f"norm must be 'batch' or 'layer', got {norm!r}")
        self.norm_kind = norm
        self.norm = nn.BatchNorm1d(d_model) if norm == "batch" else nn.LayerNorm(d_model)
        self.lru = LRU(d_model, d_state, **lru_options)
        self.glu = nn.Linear(d_model, 2 * d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_kind == "batch":
            # BatchNorm1d normalizes dim 1: features go there and back. Its training
            # statistics count padded positions too; evaluation uses the running
            # statistics, so a prediction does not depend on the padding of its batch.
            z = self.norm(u.transpose(1, 2)).transpose(1, 2)
        else:
            z = self.norm(u)
        z = self.dropout(F.gelu(self.lru(z, mask)))
        z = self.dropout(F.glu(self.glu(z), dim=-1))
        return u + z


@dataclass(frozen=True)
class LRUConfig:
    """Sizes and options of a deep LRU (Table 9 gives the thesis's per task)."""

    d_model: int = 128
    d_state: int = 256
    depth: int = 6
    dropout: float = 0.0
    norm: Literal["batch", "layer"] = "batch"
    r_min: float = 0.0
    r_max: float = 1.0
    max_phase: float = 2 * math.pi
    bidirectional: bool = False


class LRUEncoder(nn.Module):
    """Tokens ``(batch, L)`` (``vocab_size`` given) or features ``(batch, L, d_input)``
    to one pooled vector ``(batch, H)``: the mean over each sequence's true length."""

    def __init__(
        self,
        config: LRUConfig,
        *,
        vocab_size: int | None = None,
        d_input: int | None = None,
    ) -> None:
        super().__init__()
        if (vocab_size is None) == (d_input is None):
            raise ValueError("give exactly one of vocab_size (tokens) and d_input (features)")
        H = config.d_model
        if vocab_size is not None:
            self.embed: nn.Module = nn.Embedding(vocab_size, H)
        else:
            self.embed = nn.Linear(d_input, H)
        self.blocks = nn.ModuleList(
            ResidualBlock(
                H,
                config.d_state,
                norm=config.norm,
                dropout=config.dropout,
                r_min=config.r_min,
                r_max=config.r_max,
                max_phase=config.max_phase,
                bidirectional=config.bidirectional,
            )
            for _ in range(config.depth)
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        z = self.embed(x)
        L = z.shape[1]
        mask = None
        if lengths is not None:
            mask = torch.arange(L, device=z.device) < lengths.unsqueeze(1)
            mask = mask.to(z.dtype)
        for block in self.blocks:
            z = block(z, mask)
        if mask is None:
            return z.mean(dim=1)
        return (z * mask.unsqueeze(-1)).sum(dim=1) / lengths.clamp_min(1).unsqueeze(1).to(z.dtype)


class LRUClassifier(nn.Module):
    """Deep LRU, mean pooling and a linear head: logits ``(batch, classes)``."""

    def __init__(self, config: LRUConfig, num_classes: int, **encoder_options: Any) -> None:
        super().__init__()
        self.encoder = LRUEncoder(config, **encoder_options)
        self.head = nn.Linear(config.d_model, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encoder(x, lengths))


class LRURetrieval(nn.Module):
    """Two-tower matching for Retrieval: one encoder for both documents, then an MLP on
    ``[a, b, a − b, a ⊙ b]`` (the LRA dual encoder's feature interaction)."""

    def __init__(self, config: LRUConfig, num_classes: int = 2, **encoder_options: Any) -> None:
        super().__init__()
        H = config.d_model
        self.encoder = LRUEncoder(config, **encoder_options)
        self.head = nn.Sequential(nn.Linear(4 * H, H), nn.GELU(), nn.Linear(H, num_classes))

    def forward(
        self,
        x1: torch.Tensor,
        x2: torch.Tensor,
        lengths1: torch.Tensor | None = None,
        lengths2: torch.Tensor | None = None,
    ) -> torch.Tensor:
        a, b = self.encoder(x1, lengths1), self.encoder(x2, lengths2)
        return self.head(torch.cat([a, b, a - b, a * b], dim=-1))


def lru_param_groups(
    model: nn.Module, lr_factor: float, weight_decay: float | None = None
) -> list[dict[str, Any]]:
    """Two parameter groups for ``suites.api.Problem.param_groups`` (Table 9, App. E.3).

    ``recurrent``: every LRU's ν_log, θ_log, γ_log and B, with ``lr_scale=lr_factor``
    (the runner multiplies the submission's step size by it) and no weight decay: decay
    would pull ν_log and θ_log towards 0, i.e. |λ| towards exp(−1), forgetting the ring
    init. ``other``: the rest, with the optimizer's own weight decay unless
    ``weight_decay`` is given.
    """
    recurrent, other = [], []
    for name, param in model.named_parameters():
        owner, _, leaf = name.rpartition(".")
        is_recurrent = isinstance(model.get_submodule(owner), LRU) and leaf in RECURRENT_PARAMETERS
        (recurrent if is_recurrent else other).append(param)
    rest: dict[str, Any] = {"name": "other", "params": other}
    if weight_decay is not None:
        rest["weight_decay"] = weight_decay
    return [
        {"name": "recurrent", "params": recurrent, "lr_scale": lr_factor, "weight_decay": 0.0},
        rest,
    ]


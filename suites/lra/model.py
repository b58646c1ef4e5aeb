"""The deep Linear Recurrent Unit of thesis §5.3 (Orvieto et al., 2023) and its LRA heads.

One LRU layer maps a real sequence ``u_1..u_L`` (features H) through a complex diagonal
recurrence of N states::

    x_k = Λ x_{k−1} + exp(γ_log) ⊙ (B u_k),      y_k = Re(C x_k) + D ⊙ u_k,

with ``λ_j = exp(−exp(ν_log_j) + i exp(θ_log_j))`` (stable exponential parameterization,
§5.3.2: |λ_j| < 1 for every real ν_log), λ initialized uniformly on the ring
``r_min ≤ |λ| ≤ r_max`` (Lemma 5.3.1) and ``γ_log = log √(1 − |λ|²)`` (Thm 5.3.2).
The recurrence runs through :func:`kernels.diag_scan` with Λ shared over batch and time.

The design steps of Tables 3–4 that lead to it are switches of :class:`LRUConfig`
(``recurrence``, ``ring_init``, ``gamma_norm``; :data:`DESIGN_STEPS` names each row):
dense tanh/ReLU/linear RNNs (:class:`DenseRNN`, a sequential loop), then Λ diagonal as
``a + ib``, ``exp(−ν + iθ)`` or the stable form (:data:`PARAMETERIZATIONS`), each from
the Glorot spectrum (uniform on the unit disk) or the ring, with or without γ.

The network (App. E.3) is an encoder to H features, residual blocks
``u + dropout(GLU(dropout(GELU(LRU(norm(u))))))``, mean pooling over the true length of
each sequence and a linear head; Retrieval encodes both documents with one tower and
classifies ``[a, b, a − b, a ⊙ b]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from kernels import diag_scan

Recurrence = Literal["tanh", "relu", "dense", "real_imag", "exp", "stable_exp"]
#: The recurrences with a dense real A, run by a sequential loop (Table 3; Table 4 "Dense A").
DENSE_RECURRENCES = ("tanh", "relu", "dense")
#: The complex diagonal recurrences, run by :func:`kernels.diag_scan` (Table 4).
DIAGONAL_RECURRENCES = ("real_imag", "exp", "stable_exp")

#: Parameter names of the recurrence that get the task's LR factor and no weight decay
#: (Table 9): Λ in each parameterization (ν_log, θ_log; ν, θ; Re λ, Im λ), γ_log and
#: B, and the dense recurrences' A and B.
RECURRENT_PARAMETERS = (
    "nu_log", "theta_log", "nu", "theta", "lam_re", "lam_im", "gamma_log", "B_re", "B_im",
    "A", "B",
)  # fmt: skip


@dataclass(frozen=True)
class Parameterization:
    """How two real parameter vectors ``(p, q)`` give Λ's diagonal (§5.3.2–5.3.3).

    ``from_polar`` maps ``(ν, θ)`` with ``λ = exp(−ν + iθ)`` (float64) to ``(p, q)``;
    ``eigenvalues`` maps ``(p, q)`` to complex λ; ``decay`` gives ``ν = −log|λ|`` from
    ``(p, q)`` without forming |λ| (accurate when |λ| is near 1).
    """

    names: tuple[str, str]
    from_polar: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    eigenvalues: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    decay: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _log_clamped(x: torch.Tensor) -> torch.Tensor:
    # ν = ∞ (r_min = 0) or θ = 0 have probability 0 in Lemma 5.3.1; clamping to the
    # smallest positive float keeps their logs finite.
    return torch.log(x.clamp_min(torch.finfo(x.dtype).tiny))


def _real_imag_from_polar(nu: torch.Tensor, theta: torch.Tensor):
    radius = torch.exp(-nu)
    return radius * torch.cos(theta), radius * torch.sin(theta)


#: Λ's parameterizations of Table 4: ``real_imag`` (λ = a + ib), ``exp``
#: (λ = exp(−ν + iθ), may leave the unit disk) and ``stable_exp`` (Eq. 126 with a log
#: phase as in the reference code: λ = exp(−exp(ν_log) + i exp(θ_log)), |λ| < 1 always).
PARAMETERIZATIONS: dict[str, Parameterization] = {
    "real_imag": Parameterization(
        names=("lam_re", "lam_im"),
        from_polar=_real_imag_from_polar,
        eigenvalues=torch.complex,
        decay=lambda a, b: -0.5 * torch.log(a**2 + b**2),
    ),
    "exp": Parameterization(
        names=("nu", "theta"),
        from_polar=lambda nu, theta: (nu, theta),
        eigenvalues=lambda nu, theta: torch.exp(torch.complex(-nu, theta)),
        decay=lambda nu, theta: nu,
    ),
    "stable_exp": Parameterization(
        names=("nu_log", "theta_log"),
        from_polar=lambda nu, theta: (_log_clamped(nu), _log_clamped(theta)),
        eigenvalues=lambda nu_log, theta_log: torch.exp(
            torch.complex(-torch.exp(nu_log), torch.exp(theta_log))
        ),
        decay=lambda nu_log, theta_log: torch.exp(nu_log),
    ),
}

#: The design steps of Tables 3 and 4 and §5.3.4, as ``LRUConfig`` fields:
#: ``dataclasses.replace(config, **DESIGN_STEPS["exp"])``. Every step before "ring-init"
#: uses the Glorot spectrum (uniform on the unit disk for the diagonal forms, Thm 5.3.1).
DESIGN_STEPS: dict[str, dict[str, Any]] = {
    "rnn-relu": {"recurrence": "relu", "ring_init": False, "gamma_norm": False},
    "rnn-tanh": {"recurrence": "tanh", "ring_init": False, "gamma_norm": False},
    "dense-a": {"recurrence": "dense", "ring_init": False, "gamma_norm": False},
    "real-imag": {"recurrence": "real_imag", "ring_init": False, "gamma_norm": False},
    "exp": {"recurrence": "exp", "ring_init": False, "gamma_norm": False},
    "stable-exp": {"recurrence": "stable_exp", "ring_init": False, "gamma_norm": False},
    "ring-init": {"recurrence": "stable_exp", "ring_init": True, "gamma_norm": False},
    "lru": {"recurrence": "stable_exp", "ring_init": True, "gamma_norm": True},
}


def ring_polar(
    n: int, r_min: float, r_max: float, max_phase: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ν, θ), float64, with ``exp(−ν + iθ)`` uniform on the ring ``r_min ≤ |λ| ≤ r_max``.

    Lemma 5.3.1: ``u₁, u₂ ~ U[0, 1]``, ``ν = −½ log(u₁ (r_max² − r_min²) + r_min²)``,
    ``θ = max_phase u₂``: then ``|λ|² = exp(−2ν)`` is uniform on ``[r_min², r_max²]``,
    which is a uniform density on the ring's area, and the phase is uniform on
    ``[0, max_phase]``.
    """
    if not 0.0 <= r_min < r_max <= 1.0:
        raise ValueError(f"need 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
    u1 = torch.rand(n, dtype=torch.float64)
    u2 = torch.rand(n, dtype=torch.float64)
    nu = -0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2)
    return nu, max_phase * u2


def ring_init(
    n: int, r_min: float, r_max: float, max_phase: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ν_log, θ_log), float32: :func:`ring_polar` in the stable exponential form."""
    nu_log, theta_log = PARAMETERIZATIONS["stable_exp"].from_polar(
        *ring_polar(n, r_min, r_max, max_phase)
    )
    return nu_log.float(), theta_log.float()


class LRU(nn.Module):
    """One Linear Recurrent Unit: real ``(batch, L, H)`` in, real ``(batch, L, H)`` out.

    ``parameterization`` picks Λ's form (:data:`PARAMETERIZATIONS`). ``ring_init=False``
    ignores ``r_min``, ``r_max`` and ``max_phase`` and draws λ uniformly on the unit disk,
    the spectrum of a Glorot-initialized dense A (Thm 5.3.1, Table 4's first rows).
    ``gamma_norm=False`` drops γ: the state is driven by ``B u`` itself (Thm 5.3.2's
    blow-up). ``bidirectional=True`` adds a second scan from the end of the sequence with
    the same Λ, γ and B and its own C, and sums the two read-outs (as S5 does for
    Pathfinder).
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
        parameterization: str = "stable_exp",
        ring_init: bool = True,
        gamma_norm: bool = True,
    ) -> None:
        super().__init__()
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(
                f"parameterization must be one of {sorted(PARAMETERIZATIONS)}, "
                f"got {parameterization!r}"
            )
        self.d_model, self.d_state, self.bidirectional = d_model, d_state, bidirectional
        self.parameterization, self.gamma_norm = parameterization, gamma_norm
        form = PARAMETERIZATIONS[parameterization]
        ring = (r_min, r_max, max_phase) if ring_init else (0.0, 1.0, 2 * math.pi)
        p, q = (x.float() for x in form.from_polar(*ring_polar(d_state, *ring)))
        for name, value in zip(form.names, (p, q), strict=True):
            self.register_parameter(name, nn.Parameter(value))
        if gamma_norm:
            # γ = √(1 − |λ|²) = √(1 − exp(−2ν)): each state's stationary power on
            # white-noise input equals that of its input B u (Thm 5.3.2). -expm1 is
            # accurate when |λ| is near 1, where 1 − |λ|² loses every digit in float32.
            self.gamma_log = nn.Parameter(0.5 * torch.log(-torch.expm1(-2 * form.decay(p, q))))
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
        """Λ's diagonal, complex ``(N,)``, e.g. ``exp(−exp(ν_log) + i exp(θ_log))``."""
        form = PARAMETERIZATIONS[self.parameterization]
        return form.eigenvalues(*(getattr(self, name) for name in form.names))

    def driving_input(self, u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``exp(γ_log) ⊙ (B u_k)`` (or ``B u_k`` without γ), complex ``(batch, L, N)``;
        zero where ``mask`` is False."""
        # One real product instead of a complex one (several times slower on a CPU): the
        # columns of ``w`` interleave Re and Im of (γ ⊙ B)ᵀ, so ``u @ w`` holds B u in
        # the interleaved layout of a complex tensor.
        B_re, B_im = self.B_re, self.B_im
        if self.gamma_norm:
            gamma = torch.exp(self.gamma_log).unsqueeze(-1)
            B_re, B_im = B_re * gamma, B_im * gamma
        w = torch.stack((B_re, B_im), dim=-1).transpose(0, 1).reshape(self.d_model, -1)
        bu = u @ w
        if mask is not None:
            # Padding must not drive the reverse scan into the true positions.
            bu = bu * mask.unsqueeze(-1)
        return torch.view_as_complex(bu.unflatten(-1, (self.d_state, 2)))

    def read_out(self, h: torch.Tensor, direction: int = 0) -> torch.Tensor:
        """``Re(C h_k)`` with the read-out of ``direction`` (1: the reverse scan), real
        ``(batch, L, H)``: one real product of ``(Re h, Im h)`` interleaved with the rows
        ``(Re C, −Im C)``."""
        w = torch.stack((self.C_re[direction], -self.C_im[direction]), dim=-1)
        return torch.view_as_real(h).flatten(-2) @ w.reshape(self.d_model, -1).transpose(0, 1)

    def forward(self, u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        lam = self.eigenvalues()
        bu = self.driving_input(u, mask)
        y = self.read_out(diag_scan(lam, bu))
        if self.bidirectional:
            y = y + self.read_out(diag_scan(lam, bu, reverse=True), 1)
        return y + self.D * u


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "dense": lambda x: x,
}


def dense_scan(
    A: torch.Tensor,
    bu: torch.Tensor,
    activation: Callable[[torch.Tensor], torch.Tensor],
    *,
    reverse: bool = False,
) -> torch.Tensor:
    """``x_k = activation(A x_{k−1} + bu_k)`` from ``x_{−1} = 0``: real ``(batch, L, N)``.

    A plain loop over time: a nonlinear recurrence has no parallel scan (§5.3.2, Table 8).
    """
    x = bu.new_zeros(bu.shape[0], A.shape[0])
    steps = range(bu.shape[1] - 1, -1, -1) if reverse else range(bu.shape[1])
    states = []
    for k in steps:
        x = activation(x @ A.transpose(0, 1) + bu[:, k])
        states.append(x)
    if reverse:
        states.reverse()
    return torch.stack(states, dim=1)


class DenseRNN(nn.Module):
    """The RNN layers of Table 3 and Table 4's "Dense A", in the LRU's place.

    ``x_k = σ(A x_{k−1} + B u_k)``, ``y_k = C x_k + D ⊙ u_k`` with real dense A, B, C and
    σ = tanh, ReLU or the identity (``activation="dense"``: the linear RNN). Glorot
    initialization as in §5.3.1: ``A_ij ~ N(0, 1/N)`` (its spectrum fills the unit disk,
    Thm 5.3.1), ``B_ij ~ N(0, 1/H)``, ``C_ij ~ N(0, 1/N)``. No bias, so zero padding keeps
    the state at zero. ``bidirectional`` as in :class:`LRU`.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        activation: Literal["tanh", "relu", "dense"] = "tanh",
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        self.d_model, self.d_state, self.bidirectional = d_model, d_state, bidirectional
        self.activation = activation
        self.A = nn.Parameter(torch.randn(d_state, d_state) / math.sqrt(d_state))
        self.B = nn.Parameter(torch.randn(d_state, d_model) / math.sqrt(d_model))
        n_read = 2 if bidirectional else 1
        self.C = nn.Parameter(torch.randn(n_read, d_model, d_state) / math.sqrt(d_state))
        self.D = nn.Parameter(torch.randn(d_model))

    def eigenvalues(self) -> torch.Tensor:
        """A's spectrum, complex ``(N,)`` (not differentiable through repeated roots)."""
        return torch.linalg.eigvals(self.A)

    def forward(self, u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        bu = u @ self.B.transpose(0, 1)
        if mask is not None:
            bu = bu * mask.unsqueeze(-1)
        sigma = _ACTIVATIONS[self.activation]
        y = dense_scan(self.A, bu, sigma) @ self.C[0].transpose(0, 1)
        if self.bidirectional:
            y = y + dense_scan(self.A, bu, sigma, reverse=True) @ self.C[1].transpose(0, 1)
        return y + self.D * u


def recurrent_layer(
    recurrence: Recurrence, d_model: int, d_state: int, **options: Any
) -> LRU | DenseRNN:
    """The recurrent layer of one design step: :class:`DenseRNN` or :class:`LRU`.

    ``options`` are :class:`LRU`'s keywords; a dense recurrence uses only
    ``bidirectional`` and refuses ring init and γ normalization, which it does not have
    (ring init is on unless ``ring_init=False`` is given, as in :class:`LRU`).
    """
    check_design(recurrence, options.get("ring_init", True), options.get("gamma_norm", True))
    if recurrence in DENSE_RECURRENCES:
        for unused in ("r_min", "r_max", "max_phase", "ring_init", "gamma_norm"):
            options.pop(unused, None)
        return DenseRNN(d_model, d_state, activation=recurrence, **options)
    return LRU(d_model, d_state, parameterization=recurrence, **options)


def check_design(recurrence: str, ring_init: bool, gamma_norm: bool) -> None:
    """Raise ``ValueError`` for an unknown recurrence or a dense one with ring init or γ."""
    if recurrence not in DENSE_RECURRENCES + DIAGONAL_RECURRENCES:
        raise ValueError(
            f"recurrence must be one of {DENSE_RECURRENCES + DIAGONAL_RECURRENCES}, "
            f"got {recurrence!r}"
        )
    if recurrence in DENSE_RECURRENCES:
        for flag, on in (("ring_init", ring_init), ("gamma_norm", gamma_norm)):
            if on:
                raise ValueError(
                    f"recurrence={recurrence!r} has a dense A: it has no {flag}; "
                    f"use {flag}=False (see DESIGN_STEPS)"
                )


class ResidualBlock(nn.Module):
    """``u + dropout(GLU(dropout(GELU(LRU(norm(u))))))`` (pre-norm, App. E.3).

    ``recurrence`` and ``layer_options`` choose the recurrent layer (:func:`recurrent_layer`).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        norm: Literal["batch", "layer"] = "batch",
        dropout: float = 0.0,
        recurrence: Recurrence = "stable_exp",
        **layer_options: Any,
    ) -> None:
        super().__init__()
        if norm not in ("batch", "layer"):
            raise ValueError(f"norm must be 'batch' or 'layer', got {norm!r}")
        self.norm_kind = norm
        self.norm = nn.BatchNorm1d(d_model) if norm == "batch" else nn.LayerNorm(d_model)
        self.lru = recurrent_layer(recurrence, d_model, d_state, **layer_options)
        self.glu = nn.Linear(d_model, 2 * d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_kind == "batch":
            # Statistics per feature over batch and time, computed on the (batch * L, H)
            # view: the same numbers as BatchNorm1d on (batch, H, L), without the
            # strided layout that makes it several times slower on a CPU. Training
            # statistics count padded positions too; evaluation uses the running
            # statistics, so a prediction does not depend on the padding of its batch.
            z = self.norm(u.reshape(-1, u.shape[-1])).view_as(u)
        else:
            z = self.norm(u)
        z = self.dropout(F.gelu(self.lru(z, mask)))
        z = self.dropout(F.glu(self.glu(z), dim=-1))
        return u + z


@dataclass(frozen=True)
class LRUConfig:
    """Sizes and options of a deep LRU (Table 9 gives the thesis's per task).

    ``recurrence``, ``ring_init`` and ``gamma_norm`` pick a design step of Tables 3–4
    (:data:`DESIGN_STEPS`); the defaults are the LRU. A dense recurrence needs
    ``ring_init=False`` and ``gamma_norm=False``.
    """

    d_model: int = 128
    d_state: int = 256
    depth: int = 6
    dropout: float = 0.0
    norm: Literal["batch", "layer"] = "batch"
    r_min: float = 0.0
    r_max: float = 1.0
    max_phase: float = 2 * math.pi
    bidirectional: bool = False
    recurrence: Recurrence = "stable_exp"
    ring_init: bool = True
    gamma_norm: bool = True

    def __post_init__(self) -> None:
        check_design(self.recurrence, self.ring_init, self.gamma_norm)

    def layer_options(self) -> dict[str, Any]:
        """The keywords of :func:`recurrent_layer` (after ``recurrence``, sizes)."""
        return {
            "r_min": self.r_min,
            "r_max": self.r_max,
            "max_phase": self.max_phase,
            "bidirectional": self.bidirectional,
            "ring_init": self.ring_init,
            "gamma_norm": self.gamma_norm,
        }


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
                recurrence=config.recurrence,
                **config.layer_options(),
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

    ``recurrent``: every recurrent layer's Λ (ν_log, θ_log or another parameterization),
    γ_log and B, or a dense RNN's A and B, with ``lr_scale=lr_factor``
    (the runner multiplies the submission's step size by it) and no weight decay: decay
    would pull ν_log and θ_log towards 0, i.e. |λ| towards exp(−1), forgetting the ring
    init. ``other``: the rest, with the optimizer's own weight decay unless
    ``weight_decay`` is given.
    """
    recurrent, other = [], []
    for name, param in model.named_parameters():
        owner, _, leaf = name.rpartition(".")
        layer = model.get_submodule(owner)
        is_recurrent = isinstance(layer, (LRU, DenseRNN)) and leaf in RECURRENT_PARAMETERS
        (recurrent if is_recurrent else other).append((name, param))
    rest: dict[str, Any] = {"name": "other", "params": [p for _, p in other],
                            "param_names": [n for n, _ in other]}
    if weight_decay is not None:
        rest["weight_decay"] = weight_decay
    return [
        {"name": "recurrent", "params": [p for _, p in recurrent],
         "param_names": [n for n, _ in recurrent], "lr_scale": lr_factor, "weight_decay": 0.0},
        rest,
    ]

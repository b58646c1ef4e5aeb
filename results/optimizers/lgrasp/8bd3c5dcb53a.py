"""L-GRASP, layer-wise GRASP (thesis §6.4.4): each step perturbs one parameter tensor,
drawn uniformly among the P tensors, by ``σ √P ζ`` (ζ standard Gaussian), then
``x ← x − η ∇f(x + perturbation)``. The expected regularization equals GRASP's with
noise σ (Eq. 178: √2σ for two layers), but products of noises on different layers
never occur, which removes GRASP's ``σ⁴ d₁`` variance term on wide networks (Fig. 58–59).
The returned loss is the one at the perturbed point.

The grid holds σ = 0.1 with η = 0.1 (the valley/linear-net setting, as in Fig. 59) and the
widening valley's Thm 6.3.2 setting η = α/(2D) = 0.00125, σ² = αD/(2d) = 0.125."""

from suites.optimizers._noise import LGRASP

name = "lgrasp"
search_space = {"lr": [0.00125, 0.003, 0.01, 0.1], "sigma": [0.1, 0.125**0.5]}
lr_key = "lr"
#: The self-tuning track's configuration: the thesis' linear-network η = 0.1, σ = 0.1 (Fig. 59).
defaults = {"lr": 0.1, "sigma": 0.1}


def build(param_groups, lr, sigma):
    return LGRASP(param_groups, lr=lr, sigma=sigma)

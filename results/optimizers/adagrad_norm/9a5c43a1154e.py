"""AdaGrad-Norm (Ward et al., 2019; thesis §4.2.3): ``b² ← b² + ‖g‖²``,
``x ← x − (η / b) g``, one scalar step size for all parameters, ``b₀ = 0.1`` as
recommended by Ward et al."""

from suites.optimizers._scalar_step import AdaGradNorm

name = "adagrad_norm"
search_space = {"lr": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]}
lr_key = "lr"
#: The self-tuning track's configuration: torch.optim.Adagrad's default step size, b₀ = 0.1.
defaults = {"lr": 0.01}


def build(param_groups, lr):
    return AdaGradNorm(param_groups, lr=lr, b0=0.1)

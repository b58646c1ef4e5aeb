"""AdaHessian (Yao et al., 2021) from pytorch-optimizer: Adam on a Hutchinson estimate of
the Hessian's diagonal, which needs the gradient's graph."""

from pytorch_optimizer import AdaHessian

requires = ["pytorch-optimizer>=3.5"]
create_graph = True
name = "adahessian"
search_space = {"lr": [0.01, 0.1]}
lr_key = "lr"


def build(param_groups, lr):
    return AdaHessian(param_groups, lr=lr)

"""Lion (Chen et al., 2023), from lion-pytorch: the sign of an interpolated momentum."""

from lion_pytorch import Lion

name = "lion"
search_space = {"lr": [1e-4, 1e-3]}
lr_key = "lr"


def build(param_groups, lr):
    return Lion(param_groups, lr=lr)

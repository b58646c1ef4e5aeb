"""Prodigy (Mishchenko & Defazio, 2024): D-Adaptation's step size estimate; ``lr`` is a
multiplier of it, 1 by the authors' advice."""

from prodigyopt import Prodigy

requires = ["prodigyopt>=1.1"]
name = "prodigy"
search_space = {"lr": [0.5, 1.0]}
lr_key = "lr"


def build(param_groups, lr):
    return Prodigy(param_groups, lr=lr)

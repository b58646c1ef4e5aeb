"""Schedule-Free AdamW (Defazio et al., 2024; AlgoPerf 2024), from the authors' package:
no schedule, an averaged iterate for evaluation (``optimizer.eval()``)."""

import schedulefree

requires = ["schedulefree>=1.4"]
name = "adamw-schedulefree"
search_space = {"lr": [0.0025, 0.01]}
lr_key = "lr"


def build(param_groups, lr):
    return schedulefree.AdamWScheduleFree(param_groups, lr=lr, warmup_steps=10)

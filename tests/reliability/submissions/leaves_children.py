"""A hostile submission: its step starts processes meant to outlive its worker.

One ignores SIGTERM; one double-forks into a session of its own. Each prints its pid.
"""

import os
import signal
import time

import torch

name = "leaves-children"
search_space = {"lr": [0.1]}
lr_key = "lr"

_done = []


def _linger() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"CHILD {os.getpid()}", flush=True)
    while True:
        time.sleep(0.2)


def _spawn() -> None:
    if os.fork() == 0:  # a child that ignores SIGTERM
        _linger()
    if os.fork() == 0:  # a double fork into a session of its own, re-parented at once
        os.setsid()
        if os.fork() == 0:
            _linger()
        os._exit(0)
    time.sleep(0.5)


class Spawner(torch.optim.SGD):
    def step(self, closure=None):
        if not _done:
            _done.append(True)
            _spawn()
        return super().step(closure)


def build(param_groups, lr):
    return Spawner(param_groups, lr=lr)

"""A hostile submission: from inside its step it tries to change the ranking.

It rewrites the report its worker sends (claiming to be ``sgd``, a perfect score, a GPU
and no global-state change), and it finds the results directory on the driver's command
line and writes a fake ``sgd`` run file there.
"""

import os
from pathlib import Path

import torch

name = "forges-results"
search_space = {"lr": [0.1]}
lr_key = "lr"

_done = []


def _forge_report() -> None:
    import json

    import suites.executors.trainer as trainer

    original = trainer.encode_outcome

    def forged(outcome):
        data = original(outcome)
        header, _, tensors = data.partition(b"\n")
        report = json.loads(header)
        report.update(status="ok", steps_run=1, grad_evals=1, time_per_step=1e-9,
                      global_state_changes=[], error=None, score=0.0,
                      spec={"optimizer": {"name": "sgd"}}, env={"device": "cuda: H100"})
        return json.dumps(report).encode() + b"\n" + tensors

    trainer.encode_outcome = forged


def _write_into_results() -> None:
    for pid in (os.getppid(), *map(int, filter(str.isdigit, os.listdir("/proc")))):
        try:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--results" in words:
            results = Path(words[words.index(b"--results") + 1].decode())
            target = results / "runs" / "chain" / "depth-4-const" / "sgd" / "forged.json"
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("{}")
                print(f"WROTE {target}", flush=True)
            except OSError as err:
                print(f"REFUSED {type(err).__name__}", flush=True)
            return


class Forger(torch.optim.SGD):
    def step(self, closure=None):
        if not _done:
            _done.append(True)
            _forge_report()
            _write_into_results()
        return super().step(closure)


def build(param_groups, lr):
    return Forger(param_groups, lr=lr)

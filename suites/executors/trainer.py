"""The training worker: the one kind of process that imports submission code.

It serves one submission: it receives ``TrainRequest``s from the driver (pickled: the
worker trusts the driver), trains each run (``suites.training.train``) and answers with
``encode_outcome``'s bytes: the report as JSON and the model's tensors. It never evaluates
and never writes a result; whatever it sends is checked and evaluated by the driver.
"""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import torch

from suites.api import Submission, Task
from suites.executors.base import TrainRequest, encode_outcome, submission_key
from suites.record import TrainingReport
from suites.training import TrainingOutcome, global_state, train, warm_up

log = logging.getLogger(__name__)


class SubmissionCache:
    """Loaded submissions by (path, source hash), so a worker imports each file once."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str], Submission] = {}

    def preload(self, submission: Submission) -> None:
        """Use an already loaded submission for its (path, source hash)."""
        self._loaded[(str(submission.path), submission.source_hash)] = submission

    def get(self, path: str, expected_hash: str,
            expected_packages: Mapping[str, str] | None = None) -> Submission:
        """The submission at ``path``, which must still have the source hash (and, where
        given, the package versions) that the run was keyed by."""
        from suites.submission import load_submission, source_hash

        key = (path, expected_hash)
        if key not in self._loaded:
            found = source_hash(path)
            if found != expected_hash:
                raise RuntimeError(
                    f"{path} changed during the sweep (source hash {found}, expected "
                    f"{expected_hash}); rerun the sweep to run the new version"
                )
            self._loaded[key] = load_submission(path)
        loaded = self._loaded[key]
        if expected_packages is not None and dict(expected_packages) != loaded.packages:
            raise RuntimeError(
                f"{path} needs the packages {dict(expected_packages)} (the versions its runs "
                f"are keyed by), but this process has {loaded.packages}: install the same "
                "versions on every worker"
            )
        return loaded


class Trainer:
    """Makes runs in this process: one CPU thread, torch's one-time costs paid up front,
    submissions loaded once, and the global state from before any submission was imported
    kept for comparison after each run."""

    def __init__(self, task_lookup: Callable[[str], Task]):
        torch.set_num_threads(1)
        warm_up()
        self.task_lookup = task_lookup
        self.tasks: dict[str, Task] = {}
        self.submissions = SubmissionCache()
        self.pristine = global_state()

    def train(self, request: TrainRequest) -> TrainingOutcome:
        """One run; a run that cannot even start (the task or the file cannot be loaded)
        is an ``error`` report."""
        spec = request.spec
        if request.task is not None:
            self.tasks[spec.task] = request.task
        try:
            task = self.tasks.get(spec.task) or self.task_lookup(spec.task)
            submission = self.submissions.get(spec.optimizer.runtime_path or "",
                                              spec.optimizer.source_hash,
                                              spec.optimizer.packages)
        except Exception as err:  # noqa: BLE001
            return TrainingOutcome(TrainingReport(
                status="error", error=f"{type(err).__name__}: {err}\n\n"
                                      f"{traceback.format_exc()}"))
        return train(task, submission, spec.hparams, spec.seed, spec.budget,
                     time_limit=request.time_limit, pristine_state=self.pristine)


def serve(channel: Any, key: tuple[str, str], task_lookup: bytes) -> None:
    """The worker's loop (``suites.worker_process``'s target): a ``TrainRequest`` in,
    ``encode_outcome`` bytes out, until the driver sends ``None`` or goes away. It refuses
    runs of another submission. ``task_lookup`` comes pickled (from the driver, trusted):
    it is unpickled here, in the sandbox, not by the bootstrap before it."""
    trainer = Trainer(pickle.loads(task_lookup))
    try:
        channel.send(b"ready")
        while (request := channel.recv()) is not None:
            if submission_key(request.spec) != key:  # the driver never sends one
                raise RuntimeError(f"worker of {key} was sent a run of "
                                   f"{submission_key(request.spec)}")
            channel.send(encode_outcome(trainer.train(request)))
    except (EOFError, OSError):
        return  # the driver has gone: nobody is waiting for results

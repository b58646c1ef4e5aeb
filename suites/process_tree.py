"""The processes a worker started, seen from outside: who they are, their memory, their end.

A worker's code can start processes that leave its tree (double fork), its session and
process group (``setsid``), and ignore SIGTERM. ``ProcessTree`` follows them from the
process table in /proc: a member stays a member once seen, re-parented or not, and is
identified with its start time (psutil), so a reused pid is never killed by mistake.
What the tree never saw (a grandchild that escaped between two scans) is caught by making
the driver a subreaper (``become_subreaper``): orphans are then re-parented to it, and
``reap_orphans`` kills every child it does not know.

Memory is the resident set (``VmRSS``) summed over the tree, plus the kernel-kept peak of
each process (``VmHWM``), which ``/proc/<pid>/clear_refs`` resets. Disk use is summed
under given directories, each entry counting at least ``ENTRY_BYTES`` (inodes are finite).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterable

import psutil

from suites.sandbox import prctl

_PR_SET_CHILD_SUBREAPER = 36
#: Each entry under a watched directory counts at least this much (inodes are finite).
ENTRY_BYTES = 4096


def process_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, process group, session) of every process, from /proc."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue  # ended meanwhile
            fields = stat[stat.rindex(b")") + 2:].split()
            table[int(name)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def running(process: psutil.Process) -> bool:
    """Alive, not a zombie, and still the process it was (not a reused pid)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kernel_peak_rss(pid: int) -> int:
    """The kernel's peak resident set of ``pid`` (VmHWM), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_kernel_peak_rss(pid: int) -> bool:
    """Reset ``pid``'s VmHWM to its current resident set (/proc/<pid>/clear_refs, 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class ProcessTree:
    """The child and every process it started, as seen from outside.

    A process belongs when its parent belongs, or it is in the child's session or process
    group; once seen it stays a member (re-parented away or not) while it runs, recorded
    with its start time so a reused pid is never mistaken for it.
    """

    def __init__(self, root: psutil.Process):
        self.root = root
        self.members: dict[int, psutil.Process] = {}

    def scan(self) -> None:
        """Read the process table (/proc, all of it: a few ms) and record new members."""
        table = process_table()
        for pid, process in list(self.members.items()):
            if not running(process):
                del self.members[pid]
        family = set(self.members)
        # Once the child is reaped its pid may name another process: members only then.
        root = self.root.pid if self.root.is_running() else None
        if root is not None:
            family.add(root)
        grown = True
        while grown:
            grown = False
            for pid, (ppid, group, session) in table.items():
                if pid not in family and pid != self.root.pid and (
                        ppid in family or root in (group, session)):
                    family.add(pid)
                    grown = True
        for pid in family - {self.root.pid} - set(self.members):
            try:
                self.members[pid] = psutil.Process(pid)
            except psutil.Error:
                pass

    def processes(self) -> list[psutil.Process]:
        """The root (until it is reaped: then its pid may be another's) and the members."""
        return [self.root] * self.root.is_running() + list(self.members.values())

    def kernel_peak_rss(self) -> int:
        """The largest kernel-kept peak (VmHWM) among the processes, in bytes."""
        return max((kernel_peak_rss(p.pid) for p in self.processes()), default=0)

    def reset_peaks(self) -> bool:
        """Reset every process's kernel-kept peak; False where one could not be."""
        return all([reset_kernel_peak_rss(p.pid) for p in self.processes()])

    def kill_members(self) -> list[int]:
        """SIGKILL every member (not the root), rescanning until none runs (each round
        kills what the last one's forks made); reap those that are this process's
        children (re-parented to it as a subreaper). The pids killed."""
        killed: set[int] = set()
        for _ in range(100):
            self.scan()
            targets = [p for p in self.members.values() if running(p)]
            if not targets:
                break
            for process in targets:
                try:
                    process.kill()  # psutil refuses a pid reused since
                    killed.add(process.pid)
                except psutil.Error:
                    pass
        reap(killed)
        return sorted(killed)

    def rss(self) -> int:
        """The resident memory of the processes now, in bytes."""
        total = 0
        for process in self.processes():
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total


def disk_usage(directories: Iterable[os.PathLike | str]) -> int:
    """Bytes allocated under ``directories``, each entry counting at least ENTRY_BYTES."""
    total, pending = 0, [os.fspath(d) for d in directories]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                total += max(entry.stat(follow_symlinks=False).st_blocks * 512, ENTRY_BYTES)
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
            except OSError:
                pass
    return total


def become_subreaper(enable: bool = True) -> bool:
    """Make this process the one that orphans among its descendants are re-parented to
    (PR_SET_CHILD_SUBREAPER): a double-forked grandchild of a worker then becomes this
    process's child, where ``reap_orphans`` finds it. False where that is not possible."""
    return sys.platform == "linux" and prctl(_PR_SET_CHILD_SUBREAPER, int(enable)) == 0


def reap_orphans(known_pids: Iterable[int] = ()) -> list[int]:
    """SIGKILL and reap every child of this process except ``known_pids`` and
    ``multiprocessing``'s children and resource tracker (pass every other child this
    process keeps: its workers, the pools it owns). Repeated until none is left, since a
    killed orphan's own children become ours in turn. Returns the pids killed."""
    import multiprocessing.resource_tracker

    tracker = getattr(multiprocessing.resource_tracker._resource_tracker, "_pid", None)
    known = {*known_pids, tracker, *(p.pid for p in multiprocessing.active_children())}
    me, killed = os.getpid(), []
    for _ in range(100):
        orphans = [pid for pid, (ppid, _, _) in process_table().items()
                   if ppid == me and pid not in known and pid not in killed]
        if not orphans:
            break
        for pid in orphans:  # our children: their pids cannot be reused before we reap
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            killed.append(pid)
        reap(orphans)
    return killed


def reap(pids: Iterable[int], timeout: float = 5.0) -> None:
    """Collect the exit status of those of ``pids`` that are this process's children."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break  # not ours, or already collected
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.002)

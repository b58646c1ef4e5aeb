"""The worker process, attacked for real by the code it runs.

The targets are the module-level functions below: the child imports this module (its
directory is put on the child's ``PYTHONPATH``) and calls one with its channel. Each
test makes the attack and asserts what the parent sees and what is left running.
"""

from __future__ import annotations

import dataclasses
import errno
import mmap
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from suites.sandbox import default_policy, landlock_abi
from suites.worker_process import Mark, UntrustedMessage, WorkerProcess, WorkerStartError, wait

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": str(HERE)}
GIB = 1 << 30
needs_landlock = pytest.mark.skipif(landlock_abi() < 1, reason="no Landlock on this machine")


def worker(target: str, *args, **kwargs) -> WorkerProcess:
    kwargs.setdefault("env", ENV)
    return WorkerProcess(f"{Path(__file__).stem}:{target}", args, **kwargs)


def dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def eventually(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# -- targets (run in the child) ---------------------------------------------------------


def echo(channel):
    while True:
        try:
            channel.send(channel.recv())
        except EOFError:
            return


def write_outside(channel, path):
    try:
        with open(path, "w") as f:
            f.write("forged")
        channel.send("written")
    except PermissionError:
        channel.send("denied")


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['EXPLOIT_MARKER']}",))


def send_exploit(channel):
    channel.send(Exploit())
    channel.recv()


@dataclasses.dataclass
class Measurement:
    loss: float


def send_measurement(channel):
    channel.send({"measured": [Measurement(0.25), {1, 2}, b"state"]})
    channel.recv()


def send_huge_header(channel):
    channel._sock.sendall((1 << 40).to_bytes(8, "big"))
    channel.recv()


def never_read(channel):
    time.sleep(60)


def flood_output(channel, total):
    line = "x" * 999
    for _ in range(total // 1000):
        print(line)
    channel.send("done")
    channel.recv()


def print_runs(channel):
    while True:
        try:
            text = channel.recv()
        except EOFError:
            return
        print(text, flush=True)
        channel.send("printed")


SLEEP_IGNORING_SIGTERM = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "print('ready', flush=True); time.sleep(120)")


def start_stubborn_child(channel):
    """A grandchild in the worker's session that ignores SIGTERM."""
    child = subprocess.Popen([sys.executable, "-c", SLEEP_IGNORING_SIGTERM],
                             stdout=subprocess.PIPE)
    child.stdout.readline()  # its handler is in place
    channel.send(child.pid)
    channel.recv()


def escape(channel, settle):
    """A grandchild that ignores SIGTERM, leaves the session and is re-parented away:
    fork, setsid, fork, and the middle process exits after ``settle`` s; so does the
    worker once it has reported the grandchild's pid."""
    read, write = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.write(write, str(os.getpid()).encode())
            time.sleep(120)
        time.sleep(settle)
        os._exit(0)
    grandchild = int(os.read(read, 32))
    os.wait()
    channel.send(grandchild)


def allocate(channel, size, hold):
    block = b"\x01" * size  # written, so resident
    if hold:
        time.sleep(60)
    del block
    channel.send("freed")
    channel.recv()


def reserve(channel, size):
    try:
        mmap.mmap(-1, size)  # reserved, never written: only the address space limit sees it
        channel.send("reserved")
    except OSError as error:
        channel.send(errno.errorcode[error.errno])
    channel.recv()


def fill_scratch(channel):
    for i in range(2_000):
        with open(f"file-{i}", "wb") as f:
            f.write(b"x" * 100_000)
    channel.send("filled")
    channel.recv()


# -- tests ------------------------------------------------------------------------------


def test_messages_make_the_round_trip_and_stop_ends_the_worker():
    with worker("echo") as w:
        assert w.alive and w.sandbox == "none"
        for message in (1, "two", [3.0, {"four": (5,)}], b"\x00" * 100_000):
            w.send(message)
            assert w.recv(timeout=10) == message
        assert not w.poll(0.05)
    assert w.exitcode == 0 and not w.alive


@needs_landlock
def test_the_sandbox_is_in_force_before_the_target_runs(tmp_path):
    (tmp_path / "scratch").mkdir()
    outside = tmp_path / "results-run.json"
    with worker("write_outside", str(outside),
                policy=default_policy(tmp_path / "scratch")) as w:
        assert w.sandbox.startswith("landlock abi") and w.sandbox_reason == ""
        assert w.recv(timeout=30) == "denied"
    assert not outside.exists()


def test_without_landlock_the_worker_says_so_and_runs_unsandboxed(tmp_path):
    (tmp_path / "scratch").mkdir()
    outside = tmp_path / "results-run.json"
    policy = dataclasses.replace(default_policy(tmp_path / "scratch"), max_abi=0)
    with worker("write_outside", str(outside), policy=policy) as w:
        assert w.sandbox == "none" and "Landlock ABI 0" in w.sandbox_reason
        assert w.recv(timeout=30) == "written"
    assert outside.read_text() == "forged"


def test_a_pickle_from_the_worker_cannot_run_code_in_the_parent(tmp_path):
    marker = tmp_path / "exploited"
    with worker("send_exploit", env={**ENV, "EXPLOIT_MARKER": str(marker)}) as w:
        with pytest.raises(UntrustedMessage, match="posix.system"):
            w.recv(timeout=30)
    assert not marker.exists()
    # the same bytes, unpickled as pickle would, do run the code: the refusal is real
    os.environ["EXPLOIT_MARKER"] = str(marker)
    try:
        pickle.loads(pickle.dumps(Exploit()))
    finally:
        del os.environ["EXPLOIT_MARKER"]
    assert marker.exists()


def test_plain_data_and_allowed_classes_pass():
    with worker("send_measurement", allowed=[Measurement]) as w:
        assert w.recv(timeout=30) == {"measured": [Measurement(0.25), {1, 2}, b"state"]}
    with worker("send_measurement") as w, pytest.raises(UntrustedMessage, match="Measurement"):
        w.recv(timeout=30)


def test_an_oversized_message_is_refused_unread():
    with worker("send_huge_header", max_message=1 << 20) as w:
        with pytest.raises(UntrustedMessage, match="1099511627776 bytes"):
            w.recv(timeout=30)
        with pytest.raises(UntrustedMessage):  # and every later recv says so too
            w.recv(timeout=1)
        assert w.rss() < 1 << 29


def test_a_worker_that_stops_reading_cannot_block_the_parent():
    with worker("never_read") as w:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            w.send(b"x" * (16 << 20), timeout=0.5)
        assert time.monotonic() - start < 5
        w.stop(grace=0)


def test_50_mb_of_output_reach_the_parent_bounded_and_counted():
    total = 50_000_000
    with worker("flood_output", total, output_limit=1 << 20) as w:
        mark = w.mark()
        assert w.recv(timeout=120) == "done"  # the child was never blocked by its output
        assert eventually(lambda: w.output_bytes_since(mark) == total)
        text = w.output_since(mark)
        note, kept = text.split("\n", 1)
        assert note == f"[{total - len(kept)} bytes of output left out]"
        assert len(kept) == 1 << 20
        assert set(kept.replace("\n", "")) == {"x"}


def test_each_run_gets_its_own_output():
    with worker("print_runs") as w:
        first = w.mark()
        w.send("first run")
        assert w.recv(timeout=30) == "printed"
        assert eventually(lambda: w.output_since(first) == "first run\n")
        second = w.mark()
        w.send("second run")
        assert w.recv(timeout=30) == "printed"
        assert eventually(lambda: w.output_since(second) == "second run\n")
        assert w.output_since(first) == "first run\nsecond run\n"


def test_a_grandchild_that_ignores_sigterm_dies_with_kill_descendants():
    with worker("start_stubborn_child") as w:
        grandchild = w.recv(timeout=30)
        os.kill(grandchild, signal.SIGTERM)
        time.sleep(0.2)
        assert not dead(grandchild)  # it does ignore SIGTERM
        assert grandchild in w.kill_descendants()
        assert eventually(lambda: dead(grandchild)) and w.alive


def test_a_grandchild_that_left_the_session_and_outlived_the_worker_dies():
    with worker("escape", 1.0, scan_interval=0.05) as w:  # in the tree for 1 s
        grandchild = w.recv(timeout=30)
        assert w.wait(30) == 0
        process = psutil.Process(grandchild)
        assert process.ppid() != w.pid and os.getsid(grandchild) != w.pid
        assert grandchild in w.kill_descendants()  # seen in the worker's tree: a member
        assert eventually(lambda: dead(grandchild))


SUBREAPER_DRIVER = """
import os, time
import psutil
from suites.process_tree import become_subreaper, reap_orphans
from test_worker_process import worker
assert become_subreaper()
with worker("escape", 0.0, scan_interval=60) as w:  # never seen by a scan
    grandchild = w.recv(timeout=30)
    assert w.wait(30) == 0
    deadline = time.monotonic() + 10
    while psutil.Process(grandchild).ppid() != os.getpid() and time.monotonic() < deadline:
        time.sleep(0.01)  # until it is re-parented to this process, the subreaper
    print(grandchild, reap_orphans(known_pids=[w.pid]), flush=True)
    time.sleep(60)
"""


def test_a_grandchild_that_escapes_at_once_is_reaped_through_the_subreaper():
    driver = subprocess.Popen([sys.executable, "-c", SUBREAPER_DRIVER], env=ENV,
                              stdout=subprocess.PIPE, text=True)
    try:
        grandchild, reaped = driver.stdout.readline().split(" ", 1)
        assert reaped.strip() == f"[{grandchild}]"
        assert dead(int(grandchild)) and driver.poll() is None  # reaped while it still runs
    finally:
        driver.kill()
        driver.wait()


def scratch_policy(tmp_path: Path):
    """The sandbox where there is one (the way workers run), else none."""
    (tmp_path / "scratch").mkdir()
    return default_policy(tmp_path / "scratch") if landlock_abi() >= 1 else None


def test_a_worker_over_its_memory_limit_is_killed_as_out_of_memory(tmp_path):
    with worker("allocate", 3 * GIB // 2, True, memory_limit=GIB,
                policy=scratch_policy(tmp_path)) as w:
        assert w.wait(60) == -signal.SIGKILL
        assert w.kill_reason == "out_of_memory"
        with pytest.raises(EOFError):
            w.recv(timeout=5)


def test_the_peak_memory_of_a_run_is_measured_by_the_parent(tmp_path):
    with worker("allocate", 6 * GIB // 5, False, memory_limit=2 * GIB,
                policy=scratch_policy(tmp_path)) as w:
        mark = w.mark()
        assert w.recv(timeout=60) == "freed"
        assert w.peak_rss_since(mark) >= GIB  # although it was freed at once
        assert w.rss() < GIB // 2 and w.kill_reason is None
        w.mark()
        assert w.peak_rss_since(w.mark()) < GIB // 2  # a new mark measures anew
        with pytest.raises(ValueError):
            w.peak_rss_since(mark)


def test_an_allocation_past_the_address_space_backstop_fails_in_the_worker():
    with worker("reserve", 8 * GIB, memory_limit=GIB, address_space_headroom=GIB) as w:
        assert w.recv(timeout=30) == "ENOMEM"
    with worker("reserve", 8 * GIB, memory_limit=GIB, address_space_headroom=None) as w:
        assert w.recv(timeout=30) == "reserved"  # no backstop: nothing stops a reservation


def test_a_worker_that_fills_its_scratch_is_killed(tmp_path):
    (tmp_path / "scratch").mkdir()
    with worker("fill_scratch", policy=default_policy(tmp_path / "scratch"),
                disk_limit=50 << 20, scan_interval=0.05) as w:
        assert w.wait(120) == -signal.SIGKILL
        assert w.kill_reason == "disk_limit"
    assert len(os.listdir(tmp_path / "scratch")) < 2_000


def test_a_target_that_fails_to_import_shows_why():
    w = WorkerProcess("no_such_module:main", env=ENV)
    with w:
        mark = Mark(0, 0)
        with pytest.raises(EOFError):
            w.recv(timeout=30)
        assert w.wait(10) == 1
        assert eventually(lambda: "ModuleNotFoundError" in w.output_since(mark))
    with pytest.raises(ValueError, match="module:function"):
        WorkerProcess("no_function_named")


def test_a_child_that_dies_in_its_bootstrap_raises_with_its_output(tmp_path):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "__init__.py").write_text("raise SystemExit('bootstrap broken')")
    with pytest.raises(WorkerStartError, match="(?s)did not start.*bootstrap broken"):
        WorkerProcess("x:y", env={**ENV, "PYTHONPATH": str(tmp_path)})


def test_a_worker_dies_with_its_parent():
    driver = subprocess.Popen(
        [sys.executable, "-c", "import time; from test_worker_process import worker; "
         "w = worker('never_read'); print(w.pid, flush=True); time.sleep(60)"],
        env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(driver.stdout.readline())
        assert not dead(pid)
    finally:
        driver.kill()
        driver.wait()
    assert eventually(lambda: dead(pid))


def test_wait_returns_the_workers_with_something_to_say():
    with worker("echo") as quiet, worker("echo") as talking:
        assert wait([quiet, talking], timeout=0.1) == []
        talking.send("hello")
        assert wait([quiet, talking], timeout=30) == [talking]
        assert talking.recv() == "hello"

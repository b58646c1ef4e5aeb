"""The sandbox, attacked for real: each attack runs in a child process that entered it.

A child runs ``CHILD`` (enter the sandbox, then the attack) and prints one JSON line of
outcomes; where it matters, the same attack runs without the sandbox as a control, so a
refusal is the sandbox's and not the file system's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import platform
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from suites.sandbox import (
    ResourceLimits,
    SandboxPolicy,
    SandboxUnavailable,
    default_policy,
    enter_sandbox,
    landlock_abi,
    landlock_status,
    readable_rules,
    repository_root,
)

ROOT = Path(__file__).resolve().parents[2]
ABI = landlock_abi()
needs_landlock = pytest.mark.skipif(ABI < 1, reason=f"no Landlock: {landlock_status()[1]}")
needs_network_rules = pytest.mark.skipif(ABI < 4, reason="Landlock network rules need ABI 4")
needs_scopes = pytest.mark.skipif(ABI < 6, reason="Landlock signal scoping needs ABI 6")

CHILD = textwrap.dedent("""\
    import errno, json, os, pickle, socket, sys
    from pathlib import Path
    from suites.sandbox import enter_sandbox
    policy = pickle.loads(bytes.fromhex(sys.argv[1]))
    paths = json.loads(sys.argv[2])
    early = [socket.socket() for _ in range(2)]  # TCP sockets made before the sandbox
    description = enter_sandbox(policy) if policy is not None else "none"
    outcomes = {}

    def attempt(name, action):
        try:
            action()
            outcomes[name] = "allowed"
        except OSError as error:
            refused = (errno.EACCES, errno.EPERM, errno.EXDEV)
            outcomes[name] = "denied" if error.errno in refused else repr(error)

    def write(path, mode="w", text="forged"):
        with open(path, mode) as f:
            f.write(text)
""")


def run_child(policy: SandboxPolicy | None, attack: str, paths: dict | None = None,
              cwd: Path | None = None, timeout: float = 120) -> tuple[str, dict]:
    """Run ``attack`` in a child under ``policy``; its description and outcomes."""
    code = CHILD + textwrap.dedent(attack) + "\nprint(json.dumps([description, outcomes]))\n"
    env = {**os.environ, **(policy.environment if policy else {})}
    done = subprocess.run(
        [sys.executable, "-c", code, pickle.dumps(policy).hex(), json.dumps(paths or {})],
        capture_output=True, text=True, timeout=timeout, env=env,
        cwd=cwd or (policy.writable[0] if policy else None))
    assert done.returncode == 0, done.stderr
    description, outcomes = json.loads(done.stdout.splitlines()[-1])
    return description, outcomes


def results_tree(base: Path) -> dict[str, str]:
    """A results directory with another optimizer's run file, and a scratch directory."""
    run_dir = base / "results" / "runs" / "chain" / "depth-4" / "sgd"
    run_dir.mkdir(parents=True)
    run_file = run_dir / "run-0.json"
    run_file.write_text('{"score": 0.5}')
    (base / "scratch").mkdir()
    return {"run_file": str(run_file), "run_dir": str(run_dir), "scratch": str(base / "scratch")}


WRITE_ATTACKS = """
    run_file, run_dir, scratch = paths["run_file"], paths["run_dir"], paths["scratch"]
    attacks = {
        "overwrite run file": lambda: write(run_file),
        "append to run file": lambda: write(run_file, "a"),
        "truncate run file": lambda: os.truncate(run_file, 0),
        "remove run file": lambda: os.unlink(run_file),
        "rename run file": lambda: os.rename(run_file, run_file + ".old"),
        "add a run file": lambda: write(os.path.join(run_dir, "run-1.json")),
        "make a directory": lambda: os.mkdir(os.path.join(run_dir, "sub")),
        "symlink beside it": lambda: os.symlink(scratch, os.path.join(run_dir, "ln")),
        "hard link into scratch": lambda: os.link(run_file, os.path.join(scratch, "ln")),
        "move into scratch": lambda: os.rename(run_file, os.path.join(scratch, "mv")),
    }
    for name, action in attacks.items():
        if not os.path.exists(run_file):  # an unconfined control removed it: each on its own
            write(run_file)
        attempt(name, action)
"""


@needs_landlock
def test_writes_outside_scratch_are_refused_and_the_run_file_is_unchanged(tmp_path):
    sandboxed, control = results_tree(tmp_path / "sandboxed"), results_tree(tmp_path / "control")
    description, outcomes = run_child(default_policy(sandboxed["scratch"]), WRITE_ATTACKS,
                                      sandboxed)
    assert description.startswith(f"landlock abi {ABI}: writes only scratch")
    assert outcomes == dict.fromkeys(outcomes, "denied") and len(outcomes) == 10
    assert Path(sandboxed["run_file"]).read_text() == '{"score": 0.5}'
    assert sorted(os.listdir(sandboxed["run_dir"])) == ["run-0.json"]
    _, unconfined = run_child(None, WRITE_ATTACKS, control, cwd=tmp_path)
    assert set(unconfined.values()) == {"allowed"}  # the refusals above are the sandbox's


@needs_landlock
def test_the_repository_cannot_be_written(tmp_path):
    probe = ROOT / f"sandbox-probe-{uuid.uuid4().hex}"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    try:
        _, outcomes = run_child(default_policy(scratch), """
            attempt("new file", lambda: write(paths["probe"]))
            attempt("open a module for writing", lambda: open(paths["module"], "r+").close())
            attempt("read a module", lambda: open(paths["module"]).read())
        """, {"probe": str(probe), "module": str(ROOT / "suites" / "api.py")})
    finally:
        probe.unlink(missing_ok=True)
    assert outcomes == {"new file": "denied", "open a module for writing": "denied",
                        "read a module": "allowed"}


@needs_landlock
def test_scratch_is_fully_usable(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    _, outcomes = run_child(default_policy(scratch), """
        import tempfile
        attempt("write", lambda: write("a.txt"))
        attempt("append and read", lambda: (write("a.txt", "a"), open("a.txt").read()))
        attempt("rename", lambda: os.rename("a.txt", "b.txt"))
        attempt("make directories", lambda: os.makedirs("c/d"))
        attempt("move into a subdirectory", lambda: os.rename("b.txt", "c/d/b.txt"))
        attempt("temporary file", lambda: tempfile.NamedTemporaryFile().close())
        attempt("remove", lambda: (os.unlink("c/d/b.txt"), os.removedirs("c/d")))
        attempt("write /dev/null", lambda: write("/dev/null"))
    """)
    assert set(outcomes.values()) == {"allowed"}, outcomes


@needs_landlock
def test_reads_are_limited_to_the_policy_and_hidden_paths_stay_hidden(tmp_path):
    for name in ("secret", "shared/data", "shared/labels/test.csv", "shared/labels/train.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / "scratch").mkdir()
    policy = default_policy(tmp_path / "scratch", read=[tmp_path / "shared"],
                            hidden=[tmp_path / "shared/labels/test.csv"])
    _, outcomes = run_child(policy, """
        for name in ("secret", "shared/data", "shared/labels/test.csv", "shared/labels/train.csv"):
            attempt(name, lambda: open(os.path.join(paths["base"], name)).read())
        attempt("list labels", lambda: os.listdir(os.path.join(paths["base"], "shared/labels")))
    """, {"base": str(tmp_path)})
    assert outcomes == {"secret": "denied", "shared/data": "allowed",
                        "shared/labels/test.csv": "denied", "shared/labels/train.csv": "allowed",
                        "list labels": "allowed"}


def test_a_readable_root_that_holds_a_hidden_path_is_split_around_it(tmp_path):
    for name in ("a/b/hidden", "a/b/kept", "a/other"):
        (tmp_path / name).mkdir(parents=True)
    rules = dict(readable_rules([tmp_path / "a"], [tmp_path / "a/b/hidden"]))
    assert set(rules) == {tmp_path / "a", tmp_path / "a/b", tmp_path / "a/b/kept",
                          tmp_path / "a/other"}
    assert rules[tmp_path / "a"] == rules[tmp_path / "a/b"] == 1 << 3  # list only


NETWORK_ATTACKS = """
    def connect():
        early[0].settimeout(5)
        early[0].connect(("127.0.0.1", paths["port"]))
    def bind():
        early[1].bind(("127.0.0.1", 0))
        early[1].listen()
    def udp():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"leak", ("127.0.0.1", paths["port"]))
    def unix():
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(paths["unix"])
    attempt("connect", connect)  # Landlock's network rules (ABI 4)
    attempt("bind", bind)
    attempt("new socket, UDP", udp)  # the seccomp filter
    attempt("new socket, unix", unix)
"""
SECCOMP = platform.machine() in ("x86_64", "aarch64", "arm64")


def listeners(tmp_path: Path):
    """A TCP listener on 127.0.0.1 and a unix socket listener outside the sandbox."""
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / "listener.sock"))
    unix.listen()
    for listener in (tcp, unix):
        listener.settimeout(0.5)
    paths = {"port": tcp.getsockname()[1], "unix": str(tmp_path / "listener.sock")}
    return tcp, unix, paths


@needs_network_rules
def test_no_tcp_connection_listening_port_or_new_socket(tmp_path):
    (tmp_path / "scratch").mkdir()
    tcp, unix, paths = listeners(tmp_path)
    with tcp, unix:
        description, outcomes = run_child(default_policy(tmp_path / "scratch"),
                                          NETWORK_ATTACKS, paths)
        assert "no tcp" in description and ("no new sockets" in description) == SECCOMP
        new = "denied" if SECCOMP else "allowed"
        assert outcomes == {"connect": "denied", "bind": "denied", "new socket, UDP": new,
                            "new socket, unix": new}
        for listener in (tcp, unix):
            with pytest.raises(TimeoutError):
                listener.accept()  # nothing reached the listeners
        _, unconfined = run_child(None, NETWORK_ATTACKS, paths, cwd=tmp_path)
        assert set(unconfined.values()) == {"allowed"}
        tcp.accept()[0].close()
        unix.accept()[0].close()


@needs_landlock
@pytest.mark.parametrize("abi", range(1, 8))
def test_each_older_abi_is_entered_with_what_it_supports(tmp_path, abi):
    if abi > ABI:
        pytest.skip(f"the kernel has Landlock ABI {ABI}")
    (tmp_path / "scratch").mkdir()
    outside = tmp_path / "outside.txt"
    policy = dataclasses.replace(default_policy(tmp_path / "scratch"), max_abi=abi)
    tcp_listener, unix_listener, paths = listeners(tmp_path)
    with tcp_listener, unix_listener:
        description, outcomes = run_child(policy, textwrap.dedent(NETWORK_ATTACKS) + """
attempt("write outside", lambda: write(paths["outside"]))
attempt("write scratch", lambda: write("inside.txt"))
""", {**paths, "outside": str(outside)})
    tcp, new = "denied" if abi >= 4 else "allowed", "denied" if SECCOMP else "allowed"
    assert description.startswith(f"landlock abi {abi}: ")
    assert ("no tcp" in description) == (abi >= 4)
    assert outcomes == {"connect": tcp, "bind": tcp, "new socket, UDP": new,
                        "new socket, unix": new, "write outside": "denied",
                        "write scratch": "allowed"}


def test_without_landlock_entering_raises_and_changes_nothing(tmp_path):
    policy = SandboxPolicy(writable=(tmp_path,), max_abi=0)
    before = no_new_privs()
    with pytest.raises(SandboxUnavailable, match="at most Landlock ABI 0"):
        enter_sandbox(policy)  # in this process: nothing may have been applied
    assert no_new_privs() == before
    assert policy.describe(0) == "none"
    abi, reason = landlock_status()
    assert abi >= 0 and (abi > 0) == (reason == "")


def no_new_privs() -> str:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return status["NoNewPrivs"].strip()


@needs_scopes
def test_processes_outside_the_sandbox_cannot_be_signalled(tmp_path):
    (tmp_path / "scratch").mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        description, outcomes = run_child(default_policy(tmp_path / "scratch"), """
            attempt("terminate a process outside", lambda: os.kill(paths["pid"], 15))
            attempt("signal the parent", lambda: os.kill(os.getppid(), 0))
        """, {"pid": sleeper.pid})
        assert "signals and abstract unix sockets scoped" in description
        assert outcomes == {"terminate a process outside": "denied", "signal the parent": "denied"}
        assert sleeper.poll() is None
    finally:
        sleeper.send_signal(signal.SIGKILL)
        sleeper.wait()


@needs_landlock
def test_processes_outside_the_sandbox_cannot_be_inspected(tmp_path):
    (tmp_path / "scratch").mkdir()
    secret = tmp_path / "opened-by-the-parent.txt"
    secret.write_text("held-out labels")
    with open(secret) as opened:
        _, outcomes = run_child(default_policy(tmp_path / "scratch"), """
            parent = f"/proc/{os.getppid()}"
            attempt("environment", lambda: open(f"{parent}/environ").read())
            attempt("memory", lambda: open(f"{parent}/mem", "rb").read(1))
            attempt("open files", lambda: open(f"{parent}/fd/{paths['fd']}").read())
            attempt("command line", lambda: open(f"{parent}/cmdline").read())
        """, {"fd": opened.fileno()})
    assert outcomes == {"environment": "denied", "memory": "denied", "open files": "denied",
                        "command line": "allowed"}


@needs_landlock
def test_the_sandboxed_process_keeps_no_privilege(tmp_path):
    (tmp_path / "scratch").mkdir()
    _, outcomes = run_child(default_policy(tmp_path / "scratch"), """
        import resource
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        outcomes.update({key: status[key].strip() for key in ("CapEff", "CapPrm", "CapBnd",
                                                               "NoNewPrivs")})
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard + 1))
            outcomes["raise a hard limit"] = "allowed"
        except ValueError:
            outcomes["raise a hard limit"] = "denied"
    """)
    zero = "0" * 16
    if os.geteuid() != 0:  # emptying the bounding set takes a privilege it never had
        outcomes["CapBnd"] = zero
    assert outcomes == {"CapEff": zero, "CapPrm": zero, "CapBnd": zero, "NoNewPrivs": "1",
                        "raise a hard limit": "denied"}


def test_a_file_cannot_grow_past_the_file_size_limit(tmp_path):
    code = textwrap.dedent("""\
        import errno, pickle, sys
        pickle.loads(bytes.fromhex(sys.argv[1])).apply()
        try:
            with open("big", "wb") as f:
                f.write(b"x" * (3 << 20))
            print("written")
        except OSError as error:
            print(errno.errorcode[error.errno])
    """)
    limits = ResourceLimits(file_size=1 << 20)
    done = subprocess.run([sys.executable, "-c", code, pickle.dumps(limits).hex()],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "EFBIG", done.stderr
    assert (tmp_path / "big").stat().st_size == 1 << 20


@needs_landlock
def test_a_process_with_threads_is_refused(tmp_path):
    code = textwrap.dedent("""\
        import pickle, sys, threading
        from suites.sandbox import enter_sandbox
        threading.Thread(target=threading.Event().wait, daemon=True).start()
        try:
            enter_sandbox(pickle.loads(bytes.fromhex(sys.argv[1])))
        except RuntimeError as error:
            print(error)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code, pickle.dumps(default_policy(tmp_path)).hex()],
        capture_output=True, text=True, timeout=60)
    assert "single-threaded" in done.stdout, done.stderr


@needs_landlock
def test_numpy_computes_in_the_sandbox(tmp_path):
    (tmp_path / "scratch").mkdir()
    _, outcomes = run_child(default_policy(tmp_path / "scratch"), """
        import numpy as np
        matrix = np.random.default_rng(0).standard_normal((64, 64))
        outcomes["solved"] = bool(np.allclose(matrix @ np.linalg.solve(matrix, np.ones(64)), 1))
    """)
    assert outcomes == {"solved": True}


@needs_landlock
@pytest.mark.slow
def test_torch_trains_and_the_triton_interpreter_runs_in_the_sandbox(tmp_path):
    (tmp_path / "scratch").mkdir()
    policy = default_policy(tmp_path / "scratch")
    _, outcomes = run_child(policy, """
        os.environ["TRITON_INTERPRET"] = "1"
        import torch
        import triton
        import triton.language as tl

        @triton.jit
        def add(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
            offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
            mask = offsets < n
            x = tl.load(x_ptr + offsets, mask=mask)
            tl.store(out_ptr + offsets, x + tl.load(y_ptr + offsets, mask=mask), mask=mask)

        x, y, out = torch.randn(100), torch.randn(100), torch.empty(100)
        add[(2,)](x, y, out, 100, BLOCK=64)
        outcomes["triton"] = bool(torch.equal(out, x + y))
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        inputs, targets = torch.randn(32, 8), torch.randn(32, 1)
        losses = []
        for _ in range(20):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        outcomes["trained"] = losses[-1] < losses[0]
        attempt("temporary file", lambda: write(os.path.join(os.environ["TMPDIR"], "x")))
    """)
    assert outcomes == {"triton": True, "trained": True, "temporary file": "allowed"}


def test_the_default_policy_names_the_repository_and_this_python():
    policy = default_policy("/nonexistent-scratch")
    assert repository_root() == ROOT
    assert ROOT in policy.readable and Path(sys.prefix) in policy.readable
    assert policy.writable == (Path("/nonexistent-scratch"),) and not policy.network
    assert Path("/tmp") not in policy.readable and Path("/etc") not in policy.readable
    assert policy.environment["TMPDIR"] == "/nonexistent-scratch"

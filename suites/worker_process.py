"""A child Python process for untrusted code, confined from inside and watched from outside.

``WorkerProcess(target, args, policy=...)`` starts ``python -c <bootstrap>`` with
``subprocess`` in a session of its own. The bootstrap is trusted code: before anything
of the target is imported it reads its configuration from the parent, applies the
rlimits, enters the sandbox (``suites.sandbox``), reports what it enforced, and only then
imports the target ``"module:function"`` and calls it with its ``Channel`` and ``args``.

The parent trusts nothing the child says or does:

- messages (length-prefixed pickles over a socket pair) are read by a thread, at most
  ``max_message`` bytes each, and unpickled by ``recv()`` with an unpickler that builds
  plain data only (numbers, strings, bytes, lists, tuples, dicts, sets) and the classes
  the caller allows: a pickle cannot run code in the parent. ``send`` has a timeout, so a
  child that stops reading cannot block the parent;
- stdout and stderr go to one pipe that a thread drains into a bounded buffer (the last
  ``output_limit`` bytes are kept, all are counted): the child never blocks on output,
  the parent never holds more than the bound; ``mark()`` and ``output_since(mark)`` give
  one run's text;
- memory is measured from ``/proc``, never reported by the child: the resident set of the
  child and of every process it started (its descendants, its session and process group,
  and every process seen among them before, re-parented or not), sampled every
  ``sample_interval`` s, together with each process's kernel-kept peak (``VmHWM``, reset
  through ``/proc/<pid>/clear_refs`` at each mark). Over ``memory_limit`` the parent kills
  the whole tree and ``kill_reason`` says ``"out_of_memory"``; ``disk_limit`` does the same
  for the bytes (and entries) under the policy's writable directories;
- ``kill_descendants()`` SIGKILLs every process the child started; ``become_subreaper()``
  and ``reap_orphans()`` (``suites.process_tree``) catch those that double-forked away.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import queue
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from suites.process_tree import ProcessTree, disk_usage
from suites.sandbox import (
    ResourceLimits,
    SandboxPolicy,
    SandboxUnavailable,
    drop_privileges,
    enter_sandbox,
    prctl,
)

_HEADER = struct.Struct("!Q")
_PR_SET_PDEATHSIG = 1
#: Globals a message from a worker may name: the containers pickle cannot write with
#: opcodes alone. Nothing callable beyond these constructors.
PLAIN_DATA_GLOBALS = frozenset({("builtins", "set"), ("builtins", "frozenset"),
                                ("builtins", "complex"), ("builtins", "bytearray"),
                                ("builtins", "slice"), ("builtins", "range"),
                                ("collections", "OrderedDict")})
_ACTIVITY = threading.Condition()  # notified when any worker has a message or exits


class WorkerStartError(RuntimeError):
    """The child ended, or said nothing, before its bootstrap reported in."""


class UntrustedMessage(pickle.UnpicklingError):
    """A message from the worker that is not plain data of the allowed kinds."""


def _ready(sock: socket.socket, event: int, timeout: float | None) -> bool:
    """Whether ``sock`` is readable (``select.POLLIN``) or writable (``select.POLLOUT``)
    within ``timeout`` s; poll(2), which has no limit on descriptor numbers."""
    poller = select.poll()
    poller.register(sock, event)
    return bool(poller.poll(None if timeout is None else max(timeout, 0) * 1000))


def _read_exactly(sock: socket.socket, size: int) -> bytearray | None:
    """``size`` bytes from ``sock``, or ``None`` at end of stream."""
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return buffer


class Channel:
    """The child's end of the message channel: pickled objects, length-prefixed.

    The child unpickles what the parent sends (trusted). ``recv`` raises ``EOFError`` when
    the parent has closed its end: a target should then return.
    """

    def __init__(self, sock: socket.socket):
        self._sock = sock

    def send(self, obj: Any) -> None:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        self._sock.sendall(_HEADER.pack(len(data)))
        self._sock.sendall(data)

    def recv(self) -> Any:
        header = _read_exactly(self._sock, _HEADER.size)
        data = None if header is None else _read_exactly(self._sock, _HEADER.unpack(header)[0])
        if data is None:
            raise EOFError("the parent closed the channel")
        return pickle.loads(data)

    def poll(self, timeout: float | None = 0.0) -> bool:
        return _ready(self._sock, select.POLLIN, timeout)

    def fileno(self) -> int:
        return self._sock.fileno()


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, allowed: frozenset[tuple[str, str]]):
        super().__init__(io.BytesIO(data))
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise UntrustedMessage(f"a message from the worker names {module}.{name}, "
                                   "which is not an allowed type")
        return super().find_class(module, name)


def unpickle_untrusted(data: bytes, allowed: Iterable[type] = ()) -> Any:
    """Unpickle ``data`` building only plain data and instances of ``allowed`` classes
    (whose fields it sets without validation: check every value). Anything else, or a
    malformed pickle, raises ``UntrustedMessage``."""
    names = PLAIN_DATA_GLOBALS | {(cls.__module__, cls.__qualname__) for cls in allowed}
    try:
        return _RestrictedUnpickler(data, names).load()
    except UntrustedMessage:
        raise
    except Exception as error:  # truncated or corrupt: anything the unpickler may raise
        raise UntrustedMessage(f"an unreadable message from the worker: {error!r}") from error


class _OutputBuffer:
    """Drains a pipe in a thread, keeping its last ``limit`` bytes and counting all."""

    def __init__(self, fd: int, limit: int):
        self.limit, self.total = limit, 0
        self._chunks: deque[bytes] = deque()
        self._kept = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, args=(fd,), daemon=True,
                                        name="worker-output")
        self._thread.start()

    def _drain(self, fd: int) -> None:
        try:
            while chunk := os.read(fd, 1 << 16):
                with self._lock:
                    self.total += len(chunk)
                    self._chunks.append(chunk)
                    self._kept += len(chunk)
                    while self._kept - len(self._chunks[0]) >= self.limit:
                        self._kept -= len(self._chunks.popleft())
        finally:
            os.close(fd)  # only here: another thread's close could hand the number on

    def since(self, offset: int) -> tuple[bytes, int]:
        """The bytes written after ``offset`` that are still kept (at most ``limit``),
        and how many of those written after it are not."""
        with self._lock:
            data = b"".join(self._chunks)
            start = self.total - len(data)
        data = data[max(offset - start, 0):][-self.limit:]
        return data, (self.total - offset) - len(data)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


@dataclass(frozen=True)
class Mark:
    """A point in a worker's life (a run's start): output offset and measuring window."""

    output: int
    serial: int


@dataclass(frozen=True)
class _Bootstrap:
    target: str
    args: tuple
    policy: SandboxPolicy | None
    limits: ResourceLimits = field(default_factory=ResourceLimits)


_EOF = object()
# Without the working directory on sys.path: a file left in scratch cannot stand in for a
# module the bootstrap imports before the sandbox is in force.
_CHILD_MAIN = "import sys; del sys.path[0]; import suites.worker_process as w; w._child_main()"


class WorkerProcess:
    """A Python child that runs ``target`` (``"module:function"``, called as
    ``function(channel, *args)``) under ``policy`` (``None``: unconfined) and rlimits.

    ``memory_limit``: bytes of resident memory for the child's whole process tree,
    watched by the parent (``None``: unlimited); ``address_space_headroom`` sets the
    per-process RLIMIT_AS backstop to the limit plus it (``None``: no backstop, as CUDA
    needs). ``file_size_limit``: the largest file a process of the tree may write.
    ``disk_limit``: bytes under the policy's writable directories. ``output_limit``: output
    bytes kept. ``allowed``: classes messages from the child may hold besides plain data.
    ``env``: the child's environment (default: this process's), to which the policy's
    ``environment`` is added; ``cwd``: its working directory (default: the policy's first
    writable directory, which must exist). Waits up to ``start_timeout`` s for the
    bootstrap to report in. Use it as a context manager, or call ``stop()``.

    The child is SIGKILLed when the thread that created it ends (PR_SET_PDEATHSIG): make
    workers from a thread that outlives them, such as the main thread.
    """

    def __init__(self, target: str, args: Sequence[Any] = (), *,
                 policy: SandboxPolicy | None = None, memory_limit: int | None = None,
                 address_space_headroom: int | None = 4 << 30,
                 file_size_limit: int | None = 1 << 30, disk_limit: int | None = None,
                 output_limit: int = 1 << 20, max_message: int = 256 << 20,
                 allowed: Iterable[type] = (), env: Mapping[str, str] | None = None,
                 cwd: str | os.PathLike | None = None, start_timeout: float = 60.0,
                 sample_interval: float = 0.05, scan_interval: float = 1.0):
        module, _, function = target.partition(":")
        if not module or not function:
            raise ValueError(f"target must be 'module:function', got {target!r}")
        self.target, self.memory_limit, self.disk_limit = target, memory_limit, disk_limit
        self.policy, self.max_message = policy, max_message
        self.kill_reason: str | None = None
        self._allowed = tuple(allowed)
        self._sample_interval, self._scan_interval = sample_interval, scan_interval
        self._lock = threading.RLock()
        self._messages: queue.Queue = queue.Queue(maxsize=1)
        self._reader_idle = True
        self._closing = False  # the channel is being closed
        self._stopped = False  # the watch ends
        self._peak, self._serial = 0, 0
        env = dict(os.environ if env is None else env)
        if policy is not None:
            env.update(policy.environment)
            cwd = cwd if cwd is not None else policy.writable[0]
        limits = ResourceLimits(
            address_space=None if memory_limit is None or address_space_headroom is None
            else memory_limit + address_space_headroom, file_size=file_size_limit)
        self._sock, child_sock = socket.socketpair()
        output_read, output_write = os.pipe()
        try:
            self._popen = subprocess.Popen(
                [sys.executable, "-c", _CHILD_MAIN, str(child_sock.fileno()), str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=output_write, stderr=output_write,
                pass_fds=[child_sock.fileno()], env=env, cwd=cwd, start_new_session=True)
        except BaseException:
            os.close(output_read)
            raise
        finally:
            child_sock.close()
            os.close(output_write)
        self.pid = self._popen.pid
        self._output = _OutputBuffer(output_read, output_limit)
        self._tree = ProcessTree(psutil.Process(self.pid))
        threading.Thread(target=self._read_messages, daemon=True, name="worker-messages").start()
        self._monitor = threading.Thread(target=self._watch, daemon=True, name="worker-watch")
        self._monitor.start()
        self.sandbox, self.sandbox_reason = self._handshake(
            _Bootstrap(target, tuple(args), policy, limits), start_timeout)

    # -- start-up ---------------------------------------------------------------------

    def _handshake(self, bootstrap: _Bootstrap, timeout: float) -> tuple[str, str]:
        try:
            self.send(bootstrap, timeout=timeout)
            reply = self.recv(timeout=timeout)
            if not (isinstance(reply, tuple) and len(reply) == 3 and reply[0] == "ready"):
                raise UntrustedMessage(f"the bootstrap answered {reply!r}")
        except (EOFError, OSError, TimeoutError, UntrustedMessage) as error:
            self.stop(grace=0)
            output = self.output_since(Mark(0, 0))
            raise WorkerStartError(f"the worker for {self.target} did not start ({error}); "
                                   f"exit code {self.exitcode}; its output:\n{output}"
                                   ) from error
        _, description, reason = reply
        return description, reason

    # -- messages ---------------------------------------------------------------------

    def send(self, obj: Any, timeout: float | None = 30.0) -> None:
        """Send ``obj`` (pickled) to the child; ``TimeoutError`` when the child has not
        taken it within ``timeout`` s (it stopped reading)."""
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        data = memoryview(_HEADER.pack(len(payload)) + payload)
        deadline = None if timeout is None else time.monotonic() + timeout
        while data:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"the worker took no message for {timeout} s")
            if _ready(self._sock, select.POLLOUT, left):
                try:
                    data = data[self._sock.send(data, socket.MSG_DONTWAIT):]
                except BlockingIOError:
                    continue

    def _read_messages(self) -> None:
        while True:
            self._reader_idle = True
            try:
                header = _read_exactly(self._sock, _HEADER.size)
                self._reader_idle = False
                if header is None:
                    item: Any = _EOF
                elif (size := _HEADER.unpack(header)[0]) > self.max_message:
                    item = UntrustedMessage(f"the worker sent a message of {size} bytes "
                                            f"(at most {self.max_message} are read)")
                else:
                    item = _read_exactly(self._sock, size)
                    item = _EOF if item is None else bytes(item)
            except OSError as error:
                item = EOFError(f"the channel broke: {error}")
            while not self._closing:
                try:
                    self._messages.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            _notify()
            if not isinstance(item, bytes) or self._closing:
                return

    def _has_news(self) -> bool:
        """A message (or the end of messages) is there for ``recv``."""
        if self._messages.qsize() or self._closing:
            return True
        if self._popen.poll() is None or not self._reader_idle:
            return False
        return not _ready(self._sock, select.POLLIN, 0)  # nothing left in flight

    def poll(self, timeout: float | None = 0.0) -> bool:
        """True when ``recv`` would not block: a message, or the end of the channel."""
        return bool(wait([self], timeout))

    def recv(self, timeout: float | None = None) -> Any:
        """The child's next message, unpickled as untrusted data. ``EOFError`` when the
        child has closed the channel or exited with nothing more sent, ``TimeoutError``
        after ``timeout`` s, ``UntrustedMessage`` for a message beyond the allowed kinds or
        size (the channel is unusable after an oversized one)."""
        if not self.poll(timeout):
            raise TimeoutError(f"no message from the worker within {timeout} s")
        try:
            item = self._messages.get_nowait()
        except queue.Empty:
            raise EOFError(f"the worker exited (code {self.exitcode})") from None
        if not isinstance(item, bytes):
            self._messages.put_nowait(item)  # stays the answer to every later recv
            raise item if isinstance(item, Exception) else EOFError("the worker closed "
                                                                    "the channel")
        return unpickle_untrusted(item, self._allowed)

    # -- output -----------------------------------------------------------------------

    def mark(self) -> Mark:
        """Start a run: its output and peak memory are counted from here."""
        with self._lock:
            self._tree.scan()
            self._tree.reset_peaks()
            self._peak = self._tree.rss()
            self._serial += 1
            return Mark(self._output.total, self._serial)

    def output_since(self, mark: Mark) -> str:
        """The output written after ``mark``: its last ``output_limit`` bytes, with a first
        line saying how many bytes before them were left out."""
        data, dropped = self._output.since(mark.output)
        text = data.decode("utf-8", errors="replace")
        return f"[{dropped} bytes of output left out]\n{text}" if dropped else text

    def output_bytes_since(self, mark: Mark) -> int:
        """How many bytes the child wrote after ``mark``, kept or not."""
        return self._output.total - mark.output

    # -- memory and resources ---------------------------------------------------------

    def rss(self) -> int:
        """The resident memory of the child's process tree now, in bytes."""
        with self._lock:
            return self._tree.rss()

    def peak_rss_since(self, mark: Mark) -> int:
        """The peak resident memory of the child's tree since ``mark`` (the latest one),
        a lower bound: the largest of the sampled tree totals and of each process's kernel
        peak. If a peak could not be reset at the mark, it reaches back before it."""
        if mark.serial != self._serial:
            raise ValueError("peak_rss_since measures from the latest mark only")
        with self._lock:
            return max(self._peak, self._tree.kernel_peak_rss())

    def _watch(self) -> None:
        next_scan = 0.0
        while not self._stopped:
            with self._lock:
                if self._popen.poll() is not None and not self._tree.members:
                    break
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + self._scan_interval
                    self._tree.scan()
                    if self.disk_limit is not None and self.policy is not None and \
                            disk_usage(self.policy.writable) > self.disk_limit:
                        self._kill_for("disk_limit")
                rss = self._tree.rss()
                self._peak = max(self._peak, rss)
                if self.memory_limit is not None and rss > self.memory_limit:
                    self._kill_for("out_of_memory")
            time.sleep(self._sample_interval)
        _notify()

    def _kill_for(self, reason: str) -> None:
        if self.kill_reason is None and self.alive:
            self.kill_reason = reason
        self.kill()

    # -- life and death ---------------------------------------------------------------

    @property
    def alive(self) -> bool:
        with self._lock:
            return self._popen.poll() is None

    @property
    def exitcode(self) -> int | None:
        """The child's exit code; ``-N`` when signal N ended it; ``None`` while it runs."""
        with self._lock:
            return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the child to exit; its exit code, or ``None`` on timeout."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_descendants(self) -> list[int]:
        """SIGKILL every process the child started (the child itself lives on): its tree,
        its session and process group, and every member seen before; repeated until a
        scan finds none running. Those re-parented to this process are reaped. Returns
        the pids killed."""
        with self._lock:
            return self._tree.kill_members()

    def kill(self) -> None:
        """SIGKILL the child and everything it started; wait for the child."""
        with self._lock:  # the watch cannot reap the child meanwhile: its pid stays its own
            if self._popen.poll() is None:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self._popen.kill()
            self.kill_descendants()
        self._popen.wait()

    def stop(self, grace: float = 5.0) -> int | None:
        """Close the channel (a target reading it gets ``EOFError``), give the child
        ``grace`` s to exit, then kill it; kill whatever it started. Returns the exit code."""
        if not self._closing:
            self._closing = True
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread
            except OSError:
                pass
            if self.wait(grace) is None:
                self.kill()
            self.kill_descendants()
            self._stopped = True
            self._monitor.join(5)
            self._output.join(5)
            self._sock.close()
        return self.exitcode

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def inherited_environment() -> dict[str, str]:
    """This process's environment with its import path as ``PYTHONPATH``: a child then
    imports what this process can (test modules, suites outside the checkout), as a
    ``multiprocessing`` child would."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def _notify() -> None:
    with _ACTIVITY:
        _ACTIVITY.notify_all()


def wait(workers: Iterable[WorkerProcess], timeout: float | None = None) -> list[WorkerProcess]:
    """The workers whose ``recv`` would not block (a message, an exit), waiting up to
    ``timeout`` s (``None``: until there is one) for at least one."""
    workers = list(workers)
    deadline = None if timeout is None else time.monotonic() + timeout
    with _ACTIVITY:
        while True:
            ready = [w for w in workers if w._has_news()]
            left = None if deadline is None else deadline - time.monotonic()
            if ready or (left is not None and left <= 0):
                return ready
            # a child's exit is seen by polling: wake at least every 0.1 s
            _ACTIVITY.wait(0.1 if left is None else min(left, 0.1))


def _child_main() -> None:
    """The bootstrap: confine this process, report, then import and call the target."""
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(sys.argv[2]):
        os._exit(1)  # the parent died before the line above: nobody to serve
    channel = Channel(socket.socket(fileno=int(sys.argv[1])))
    bootstrap: _Bootstrap = channel.recv()
    bootstrap.limits.apply()
    description, reason = "none", ""
    if bootstrap.policy is not None:
        try:
            description = enter_sandbox(bootstrap.policy)
        except SandboxUnavailable as error:
            reason = str(error)
            drop_privileges()
    channel.send(("ready", description, reason))
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # a killed child's last lines are kept
    module, _, function = bootstrap.target.partition(":")
    getattr(importlib.import_module(module), function)(channel, *bootstrap.args)
    # Nothing of the child's needs tearing down (the parent removes its scratch directory
    # and reaps what it started): it ends now, not after the interpreter's slow shutdown
    # of everything the target imported, which the parent would otherwise wait out.
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)

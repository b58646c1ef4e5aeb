"""Confining the process that runs submission code: Landlock, rlimits and no privileges.

``enter_sandbox(policy)`` restricts the calling process and every process it starts
later, irreversibly, through Linux Landlock (5.13 and later, no root needed): files may be
written only beneath the policy's writable directories, read only beneath its readable
paths, and, where the kernel's Landlock ABI has network rules (4 and later), no TCP port
may be bound or connected to. From ABI 6 on, signals to processes outside the sandbox and
connections to abstract unix sockets made outside it are refused too (a submission cannot
kill its driver). Unless the policy allows the network, a seccomp filter refuses new
sockets altogether (Landlock leaves UDP and pathname unix sockets open). The process also
loses every capability it had (``drop_privileges``): a root worker could otherwise load a
kernel module from its scratch directory, or raise its rlimits back.

Landlock's ABI grows with the kernel; each access right the running ABI lacks is left
out of the ruleset (the kernel documentation's best-effort approach), and the returned
description says what was enforced. ``landlock_abi()`` is 0 where Landlock cannot be
used at all (another OS, an old kernel, Landlock disabled at boot, a seccomp filter that
refuses the system call); ``enter_sandbox`` then raises ``SandboxUnavailable``.

``ResourceLimits(...).apply()`` sets the rlimits: the address space (a backstop behind
the parent's RSS watch), the size of any one file written, no core files.

What this module does not restrict: already open file descriptors, file metadata
(``chmod``, ``utime``, extended attributes: Landlock does not cover them), reading what
the policy allows, CPU time, process count; see the README's "Trust".
"""

from __future__ import annotations

import ctypes
import errno
import functools
import glob
import os
import platform
import resource
import site
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The Landlock system calls have one number on every architecture of the unified table.
_SYSCALLS = {"create_ruleset": 444, "add_rule": 445, "restrict_self": 446}
_UNIFIED_TABLE_MACHINES = {"x86_64", "aarch64", "arm64", "riscv64", "ppc64le", "s390x"}
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAPABILITY_VERSION_3 = 0x20080522
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
# The seccomp filter: per machine, its audit architecture and the number of socket(2).
_SECCOMP_ARCH = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198),
                 "arm64": (0xC00000B7, 198)}
_BPF_LD_ABS, _BPF_JEQ, _BPF_JGE, _BPF_RET = 0x20, 0x15, 0x35, 0x06
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
_X32_SYSCALL_BIT = 0x40000000

# Filesystem access rights (linux/landlock.h), by the ABI that introduced them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
# Network rights (ABI 4) and scopes (ABI 6).
BIND_TCP, CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

#: Every filesystem right the kernel knows at each ABI (ABI 7 added only audit flags).
FS_RIGHTS_AT_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1,
                    5: (1 << 16) - 1, 6: (1 << 16) - 1, 7: (1 << 16) - 1}
#: The rights that make sense on a file (the others concern directories).
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ_RIGHTS = EXECUTE | READ_FILE | READ_DIR
DEVICE_RIGHTS = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV
NEWEST_KNOWN_ABI = 7


class SandboxUnavailable(RuntimeError):
    """Landlock cannot be used on this machine (the message says why)."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)  # the C library this process runs on


def _checked(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def prctl(option: int, arg: int = 0, arg3: int = 0) -> int:
    """prctl(2); the C result (-1 and errno on failure)."""
    prctl = _libc().prctl
    prctl.restype = ctypes.c_int
    return prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(arg3),
                 ctypes.c_ulong(0), ctypes.c_ulong(0))


def _landlock(name: str, *args) -> int:
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(ctypes.c_long(_SYSCALLS[name]), *args)


def landlock_status() -> tuple[int, str]:
    """The running kernel's Landlock ABI version, and the reason when it is 0."""
    if sys.platform != "linux":
        return 0, f"Landlock is a Linux feature (this is {sys.platform})"
    if platform.machine() not in _UNIFIED_TABLE_MACHINES:
        return 0, f"no known Landlock system call numbers for {platform.machine()}"
    abi = _landlock("create_ruleset", None, ctypes.c_size_t(0),
                    ctypes.c_uint32(_CREATE_RULESET_VERSION))
    if abi >= 1:
        return int(abi), ""
    code = ctypes.get_errno()
    reasons = {errno.ENOSYS: "the kernel has no Landlock (Linux 5.13 or later needed), or a "
                             "seccomp filter refuses its system calls",
               errno.EOPNOTSUPP: "Landlock is disabled at boot (lsm= kernel parameter)",
               errno.EPERM: "a seccomp filter refuses the Landlock system calls"}
    return 0, reasons.get(code, f"landlock_create_ruleset failed: {os.strerror(code)}")


def landlock_abi() -> int:
    """The running kernel's Landlock ABI version; 0 when Landlock cannot be used."""
    return landlock_status()[0]


@dataclass(frozen=True)
class SandboxPolicy:
    """What a sandboxed process may touch.

    ``writable``: directories beneath which everything is allowed (create, write, remove,
    rename within them, execute). ``readable``: directories or files beneath which reading
    and executing are allowed. ``hidden``: paths beneath ``readable`` ones whose files stay
    unreadable (names beneath may still be listed). ``devices``: device files that may be
    read, written and controlled (ioctl): ``/dev/null``, GPUs. ``network``: allow new
    sockets, TCP bind and connect. ``environment``: variables the sandboxed process needs
    under this policy (temporary files and caches moved into the writable directory);
    ``WorkerProcess`` adds them to the child's environment. ``writable_label`` names the
    writable directories in the description. ``max_abi`` uses at most that Landlock ABI
    (``0``: no Landlock), to pin a behaviour or to test older kernels' behaviour on a newer
    one.
    """

    writable: tuple[Path, ...]
    readable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    devices: tuple[Path, ...] = ()
    network: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)
    writable_label: str = "listed directories"
    max_abi: int | None = None

    def describe(self, abi: int) -> str:
        """What this policy enforces under Landlock ABI ``abi``, in one line."""
        if abi < 1:
            return "none"
        parts = [f"landlock abi {abi}: writes only {self.writable_label}"]
        if self.network:
            parts.append("tcp allowed")
        elif abi >= 4:
            parts.append("no tcp")
        else:
            parts.append("tcp not restricted (abi < 4)")
        if abi >= 6:
            parts.append("signals and abstract unix sockets scoped")
        if not self.network and platform.machine() in _SECCOMP_ARCH:
            parts.append("no new sockets")
        return ", ".join(parts)


def python_paths() -> list[Path]:
    """The Python installation(s) this process runs from: prefixes, standard library,
    site-packages (system, user, virtual environment) and every existing ``sys.path``
    entry (editable installs, ``PYTHONPATH``) but the working directory, which ``python
    -m`` puts there and a child with a working directory of its own does not import from."""
    paths = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)),
             *sysconfig.get_paths().values(), *site.getsitepackages(),
             *os.environ.get("PYTHONPATH", "").split(os.pathsep),
             *(p for p in sys.path if p and os.path.abspath(p) != os.getcwd())]
    if site.ENABLE_USER_SITE:
        paths.append(site.getusersitepackages())
    return _existing(paths)


#: What CPU torch, numpy and the Triton interpreter read outside the Python installation
#: (found by tracing their import and a training step with strace): shared libraries and
#: their cache, the user and time zone databases, OpenSSL's configuration (hashlib), CPU
#: topology (/proc/cpuinfo, /sys/devices/system/cpu), /proc/self/maps, random devices.
#: /bin and /sbin are there for Triton's GPU path (``ldconfig -p``). Not /tmp, not all of
#: /etc or /dev (raw disks), not the home directory.
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/proc", "/sys",
               "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
               "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/ssl/openssl.cnf",
               "/dev/zero", "/dev/random", "/dev/urandom")
#: Device files every process may write (the bit bucket); GPUs are found at policy time.
STANDARD_DEVICES = ("/dev/null", "/dev/full")
GPU_DEVICE_PATTERNS = ("/dev/nvidia*", "/dev/nvidia-caps/*", "/dev/dri/*", "/dev/kfd")


def repository_root() -> Path:
    """The directory holding the ``suites`` package (the repository, or site-packages)."""
    return Path(__file__).resolve().parent.parent


def scratch_environment(scratch: Path) -> dict[str, str]:
    """Variables that send temporary files and the caches of torch, Triton and matplotlib
    into ``scratch`` (their defaults, /tmp and the home directory, are not writable)."""
    scratch = str(scratch)
    return {"TMPDIR": scratch, "TEMP": scratch, "TMP": scratch,
            "TRITON_CACHE_DIR": os.path.join(scratch, "triton"),
            "TORCHINDUCTOR_CACHE_DIR": os.path.join(scratch, "torchinductor"),
            "MPLCONFIGDIR": os.path.join(scratch, "matplotlib"),
            "XDG_CACHE_HOME": os.path.join(scratch, "cache")}


def default_policy(scratch: str | os.PathLike, *, read: Iterable[str | os.PathLike] = (),
                   hidden: Iterable[str | os.PathLike] = (), network: bool = False
                   ) -> SandboxPolicy:
    """Writes only beneath ``scratch``; reads of the repository, the Python installation,
    the system libraries and what torch, numpy and Triton need (``SYSTEM_READ``), plus
    ``read``; GPU device files where there are some; no TCP unless ``network``."""
    scratch = Path(scratch).resolve()
    readable = [repository_root(), *python_paths(), *map(Path, SYSTEM_READ), *map(Path, read)]
    devices = [*map(Path, STANDARD_DEVICES),
               *(Path(p) for pattern in GPU_DEVICE_PATTERNS for p in glob.glob(pattern))]
    return SandboxPolicy(writable=(scratch,), readable=tuple(_existing(readable)),
                         hidden=tuple(Path(p).resolve() for p in hidden),
                         devices=tuple(_existing(devices)), network=network,
                         environment=scratch_environment(scratch), writable_label="scratch")


def _existing(paths: Iterable[str | os.PathLike]) -> list[Path]:
    seen: dict[Path, None] = {}
    for path in paths:
        if path and os.path.exists(path):
            seen.setdefault(Path(os.path.abspath(path)), None)
    return list(seen)


def readable_rules(readable: Iterable[Path], hidden: Iterable[Path]) -> list[tuple[Path, int]]:
    """(path, rights) rules that allow reading beneath ``readable`` except beneath
    ``hidden``: a root holding a hidden path is replaced by its other entries, and the
    directories on the way may only be listed."""
    hidden = [Path(os.path.realpath(h)) for h in hidden]
    rules: list[tuple[Path, int]] = []
    pending = [Path(os.path.realpath(p)) for p in readable]
    while pending:
        path = pending.pop()
        if any(path == h or h in path.parents for h in hidden):
            continue
        if not any(path in h.parents for h in hidden):
            rules.append((path, READ_RIGHTS))
            continue
        rules.append((path, READ_DIR))  # a hidden path lies beneath: split it
        pending += [path / name for name in os.listdir(path)]
    return rules


def _rights_for(path: Path, rights: int) -> int:
    return rights if path.is_dir() else rights & FILE_RIGHTS


def enter_sandbox(policy: SandboxPolicy) -> str:
    """Restrict this process and its future children to ``policy``, irreversibly, and
    drop its privileges; return the description to record (``SandboxPolicy.describe``).

    Must be called while the process has one thread (Landlock restricts the calling
    thread only: threads already running would stay free). Raises ``SandboxUnavailable``
    (nothing changed then) when Landlock cannot be used or ``policy.max_abi`` is 0.
    """
    abi, reason = landlock_status()
    if policy.max_abi is not None and policy.max_abi < abi:
        abi, reason = policy.max_abi, f"the policy allows at most Landlock ABI {policy.max_abi}"
    if abi < 1:
        raise SandboxUnavailable(reason)
    threads = os.listdir("/proc/self/task")
    if len(threads) != 1:
        raise RuntimeError(f"enter_sandbox needs a single-threaded process ({len(threads)} "
                           "threads run here): call it before anything starts a thread")
    abi = min(abi, NEWEST_KNOWN_ABI)
    fs_rights = FS_RIGHTS_AT_ABI[abi]
    attr = _RulesetAttr(handled_access_fs=fs_rights,
                        handled_access_net=0 if policy.network or abi < 4
                        else BIND_TCP | CONNECT_TCP,
                        scoped=SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else ctypes.sizeof(_RulesetAttr)
    ruleset = _checked(_landlock("create_ruleset", ctypes.byref(attr), ctypes.c_size_t(size),
                                 ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        rules = readable_rules(policy.readable, policy.hidden)
        rules += [(Path(p), DEVICE_RIGHTS) for p in policy.devices]
        rules += [(Path(p), fs_rights) for p in policy.writable]
        for path, rights in rules:
            _add_path_rule(ruleset, path, _rights_for(path, rights) & fs_rights)
        _checked(prctl(_PR_SET_NO_NEW_PRIVS, 1), "prctl(PR_SET_NO_NEW_PRIVS)")
        _checked(_landlock("restrict_self", ctypes.c_int(ruleset), ctypes.c_uint32(0)),
                 "landlock_restrict_self")
    finally:
        os.close(ruleset)
    drop_privileges()
    if not policy.network and platform.machine() in _SECCOMP_ARCH:
        refuse_new_sockets()
    return policy.describe(abi)


def _add_path_rule(ruleset: int, path: Path, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # gone since the policy was made: nothing to allow
    try:
        rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        _checked(_landlock("add_rule", ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                           ctypes.byref(rule), ctypes.c_uint32(0)), f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def drop_privileges() -> None:
    """No new privileges through exec (setuid, file capabilities), and no capability
    left: emptied bounding and ambient sets, then empty effective, permitted and
    inheritable sets. A no-op for what an unprivileged process lacks already."""
    _checked(prctl(_PR_SET_NO_NEW_PRIVS, 1), "prctl(PR_SET_NO_NEW_PRIVS)")
    if sys.platform != "linux":
        return
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        prctl(_PR_CAPBSET_DROP, cap)  # EPERM without CAP_SETPCAP: then it holds none anyway
    prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    header = _CapHeader(version=_CAPABILITY_VERSION_3, pid=0)
    data = (_CapData * 2)()
    capset = _libc().capset
    _checked(capset(ctypes.byref(header), data), "capset")


def refuse_new_sockets() -> None:
    """Make socket(2) fail with EPERM in this process and its future children (a seccomp
    filter; sockets already open, such as a worker's channel, and socketpair(2) still work).
    Landlock leaves UDP and pathname unix sockets open (a cluster's object store listens on
    one); this closes them, raw and netlink sockets, and TCP below ABI 4. System calls of
    another architecture (32-bit, x32) are refused whole. Needs no-new-privileges set."""
    arch, socket_nr = _SECCOMP_ARCH[platform.machine()]
    deny = _SECCOMP_RET_ERRNO | errno.EPERM
    program = [(_BPF_LD_ABS, 0, 0, 4),  # seccomp_data.arch
               (_BPF_JEQ, 0, 4, arch),
               (_BPF_LD_ABS, 0, 0, 0),  # seccomp_data.nr
               (_BPF_JGE, 2, 0, _X32_SYSCALL_BIT),
               (_BPF_JEQ, 1, 0, socket_nr),
               (_BPF_RET, 0, 0, _SECCOMP_RET_ALLOW),
               (_BPF_RET, 0, 0, deny)]
    filters = (_SockFilter * len(program))(*(_SockFilter(*op) for op in program))
    fprog = _SockFprog(len=len(program), filter=filters)
    _checked(prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog)),
             "prctl(PR_SET_SECCOMP)")


@dataclass(frozen=True)
class ResourceLimits:
    """rlimits for a process running submission code (``None``: unlimited).

    ``address_space``: bytes of virtual memory (RLIMIT_AS). A backstop only, per process:
    virtual memory runs far above the resident set (torch's CPU import maps about 1 GiB,
    CUDA maps much more, so leave it ``None`` on GPUs); the parent's RSS watch is the real
    limit. ``file_size``: the largest file the process may write (RLIMIT_FSIZE; a larger
    write fails with EFBIG). ``core``: core file size (0: none).
    """

    address_space: int | None = None
    file_size: int | None = 1 << 30
    core: int | None = 0

    def apply(self) -> None:
        """Set these limits (soft and hard) on this process and its future children."""
        for kind, value in ((resource.RLIMIT_AS, self.address_space),
                            (resource.RLIMIT_FSIZE, self.file_size),
                            (resource.RLIMIT_CORE, self.core)):
            if value is not None:
                resource.setrlimit(kind, (value, value))


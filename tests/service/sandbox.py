"""Run a command inside the system-call sandbox a unit file describes, without systemd.

``python sandbox.py UNIT -- COMMAND...`` loads a seccomp filter built like systemd's from the unit's
``SystemCallFilter=`` and ``RestrictAddressFamilies=`` lines (through libseccomp, as systemd does), checks
that it bites, then runs COMMAND in it. systemd-analyze supplies the contents of the ``@groups``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

ALLOW = 0x7FFF0000
CMP_EQ = 4
FAMILIES = {"AF_UNIX": socket.AF_UNIX, "AF_INET": socket.AF_INET, "AF_INET6": socket.AF_INET6}


class ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def errno_action(code: int) -> int:
    return 0x00050000 | code


def group(name: str, seen: dict[str, set[str]]) -> set[str]:
    """The system calls of ``@name``, nested groups expanded."""
    if name not in seen:
        out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True)
        calls: set[str] = set()
        for line in out.stdout.splitlines()[1:]:
            word = line.strip()
            if word.startswith("@"):
                calls |= group(word, seen)
            elif word and not word.startswith("#"):
                calls.add(word)
        seen[name] = calls
    return seen[name]


def unit_settings(unit: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith(f"{key}=")]


def allowed_calls(unit: Path) -> set[str]:
    seen: dict[str, set[str]] = {}
    allowed: set[str] = set()
    for value in unit_settings(unit, "SystemCallFilter"):
        deny = value.startswith("~")
        names = set()
        for word in value.lstrip("~").split():
            names |= group(word, seen) if word.startswith("@") else {word}
        allowed = allowed - names if deny else allowed | names
    return allowed


def load_filter(unit: Path) -> None:
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_void_p,
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(errno_action(errno.EPERM))
    families = [FAMILIES[f] for value in unit_settings(unit, "RestrictAddressFamilies") for f in value.split()]
    socket_nr = lib.seccomp_syscall_resolve_name(b"socket")
    for name in sorted(allowed_calls(unit)):
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0 or (families and nr == socket_nr):
            continue  # not a system call of this architecture, or socket(), allowed per family below
        if lib.seccomp_rule_add_array(ctx, ALLOW, nr, 0, None) != 0:
            raise OSError(f"seccomp rule for {name}")
    for family in families:
        cmp = ArgCmp(0, CMP_EQ, family, 0)
        if lib.seccomp_rule_add_array(ctx, ALLOW, socket_nr, 1, ctypes.byref(cmp)) != 0:
            raise OSError("seccomp rule for socket()")
    if lib.seccomp_load(ctx) != 0:
        raise OSError("seccomp_load failed")


def filter_bites() -> bool:
    """A privileged call and a netlink socket, both outside the unit's sandbox, now fail."""
    try:
        os.setuid(os.getuid())
        return False
    except PermissionError:
        pass
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close()
        return False
    except OSError:
        return True


def main() -> None:
    unit, separator, *command = sys.argv[1:]
    assert separator == "--" and command, __doc__
    load_filter(Path(unit))
    if not filter_bites():
        sys.exit("sandbox: the filter does not restrict anything")
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()

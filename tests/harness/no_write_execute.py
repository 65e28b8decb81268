"""Runs a program with memory that is never both writable and executable, as systemd's
MemoryDenyWriteExecute=yes does: `python no_write_execute.py PROGRAM ARGS...` sets the
kernel's PR_SET_MDWE (Linux 6.3+; kept across execve and by every child), then becomes
PROGRAM. `--probe` exits 0 when the kernel enforces it, 1 when it cannot."""

from __future__ import annotations

import ctypes
import mmap
import os
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def refuse_write_execute() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0)


def enforced() -> bool:
    """Whether a writable and executable mapping is now refused."""
    try:
        mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except PermissionError:
        return True
    return False


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: no_write_execute.py --probe | PROGRAM ARGS...", file=sys.stderr)
        return 2
    if not refuse_write_execute():
        print("this kernel cannot refuse write-execute memory (PR_SET_MDWE)", file=sys.stderr)
        return 1
    if argv[0] == "--probe":
        return 0 if enforced() else 1
    os.execvp(argv[0], argv)  # a name is looked up on PATH
    return 1  # not reached: execvp replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

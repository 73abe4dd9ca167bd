"""The grading server: imports torch, course_lib and the chapter once, then forks a supervisor per job.

Started by the grader as a fresh interpreter (``python -m course_lib.grading.server FD``) with
a cleared environment, so forking it costs milliseconds instead of the seconds an ``import
torch`` takes. It never runs student code and never runs autograd (a process forked from one
that has cannot use it). Requests arrive on a Unix socket: one byte with four
pipe ends and the job attached (control, status, result, output, job); see
``sandbox.supervise``.
"""
from __future__ import annotations

import importlib
import json
import os
import select
import signal
import socket
import struct
import sys

from . import sandbox


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return bytes(out)


def _reap(supervisors: set[int]) -> None:
    """Reap finished supervisors; kill any other child (an orphan we adopted as subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        supervisors.discard(pid)
    for pid in set(sandbox._children(os.getpid())) - supervisors:
        try:  # a direct child that is no supervisor of ours: an orphan we adopted
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def serve(sock: socket.socket) -> None:
    (size,) = struct.unpack(">I", _recv_exact(sock, 4))
    init = json.loads(_recv_exact(sock, size))
    for name in ["numpy", "torch", "course_lib", *init.get("preload", []), init["chapter_module"]]:
        importlib.import_module(name)
    try:  # without PID namespaces, orphans of a job come to us and are killed
        sandbox.prctl(sandbox.PR_SET_CHILD_SUBREAPER, 1)
    except OSError:
        pass
    sock.sendall(b"ready")
    supervisors: set[int] = set()
    while True:
        ready, _, _ = select.select([sock], [], [], 0.5)
        _reap(supervisors)
        if not ready:
            continue
        try:
            head, fds, _, _ = socket.recv_fds(sock, 1, 5)
            if not head:
                raise EOFError
        except (EOFError, ConnectionError):
            break
        if len(fds) != 5:
            for fd in fds:
                os.close(fd)
            continue
        # The job itself (the student's cells) is read by the supervisor from the fifth file
        # descriptor: this process never holds a student's code, so no later job can find it
        # in the memory it inherits from us.
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                sandbox.supervise(*fds)
            finally:
                os._exit(0)
        supervisors.add(pid)
        for fd in fds:
            os.close(fd)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the grader, which closes the socket
    try:  # a job running as the same user (no root, no namespaces) cannot trace or read us
        sandbox.prctl(sandbox.PR_SET_DUMPABLE, 0)
    except OSError:
        pass
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        serve(sock)
    except (EOFError, ConnectionError):
        pass
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()

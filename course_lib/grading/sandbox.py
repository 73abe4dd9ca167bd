"""One item of one student, in a process of its own: the supervisor and the student's process.

The grading server (``server``) forks a *supervisor* per job. The supervisor never runs
student code: it creates fresh Linux namespaces when it can (PID, mount, network, IPC, UTS),
forks the *student's process*, waits, and when the job ends (the student's process exits, or
the grader closes the control pipe because time or output ran out) kills every process the
job started and reports how the student's process ended, on a pipe only it holds.

The student's process first locks itself in, while it still runs only our code: a fresh
``/proc``, every existing mount read-only, an empty size-limited ``/tmp`` as its working
folder, the solutions, the submissions and earlier grades hidden under empty mounts, resource
limits (address space, CPU time, processes, file size, open files), a cleared environment,
stdout and stderr on a pipe the grader counts, and, when the grader runs as root, a dedicated
unprivileged user with no way back (``no_new_privs``). It reports which of these took effect
on a second pipe that it closes before the first student line runs. Then it loads the cells,
runs the item's ``collect`` step and sends plain data (``protocol``) to the grader.

Where a protection is not available (not root and no user namespaces, macOS), the job runs
with what is, and the report says which.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import io
import json
import os
import random
import resource
import select
import signal
import struct
import sys
import time
from typing import Any, Callable

from .protocol import encode_value, message
from .student import (CallTimeout, ForbiddenCall, OutputFlood, Student, _OUR_FILES, describe,
                      forbidden_guards, time_limit)

_OUR_FILES.add(__file__)

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 36, 38, 1, 4
_MOUNT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
                "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME,
                "strictatime": MS_STRICTATIME}

_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _libc


def _call(name: str, *args) -> None:
    fn = getattr(libc(), name, None)
    if fn is None:  # e.g. prctl or unshare on macOS
        raise OSError(0, f"{name} is not available on this system")
    if fn(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def prctl(option: int, arg: int) -> None:
    _call("prctl", ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0),
          ctypes.c_ulong(0), ctypes.c_ulong(0))


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _call("mount", enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _close_fds_except(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


# --- the supervisor --------------------------------------------------------------------------


def _read_job(fd: int) -> dict:
    chunks = []
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return json.loads(b"".join(chunks))


def supervise(control_r: int, status_w: int, result_w: int, output_w: int, job_fd: int) -> None:
    """Body of the supervisor process (root when the grader is; never runs student code)."""
    try:
        prctl(PR_SET_DUMPABLE, 1)  # the server is not (see server.main); the job's processes read their /proc
        job = _read_job(job_fd)
        _close_fds_except({control_r, status_w, result_w, output_w})
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        setup_r, setup_w = os.pipe()
        namespaces = _enter_namespaces(job["isolation"])
        if not namespaces:  # without a PID namespace, adopt orphans so we can find them
            try:
                prctl(PR_SET_CHILD_SUBREAPER, 1)
            except OSError:
                pass
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.close(control_r)
                os.close(status_w)
                os.close(setup_r)
                student_process(job, namespaces, result_w, output_w, setup_w)
            except BaseException:
                pass
            finally:
                os._exit(code)
        os.close(result_w)
        os.close(output_w)
        os.close(setup_w)
        status = _wait(pid, control_r, setup_r, bool(namespaces))
        status["namespaces"] = namespaces
        _write_all(status_w, json.dumps(status).encode())
    except BaseException as exc:
        try:
            _write_all(status_w, json.dumps({"supervisor_error": f"{type(exc).__name__}: {exc}"}).encode())
        except OSError:
            pass
    finally:
        os._exit(0)


def _enter_namespaces(isolation: str) -> list[str]:
    """New namespaces for the job; the names of those that took effect ([] when none could)."""
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    if isolation == "root":
        try:
            _call("unshare", ctypes.c_int(flags))
            return ["pid", "mount", "network", "ipc", "uts"]
        except OSError:
            return []
    if isolation == "userns":
        uid, gid = os.getuid(), os.getgid()
        try:
            _call("unshare", ctypes.c_int(flags | CLONE_NEWUSER))
            with open("/proc/self/setgroups", "w") as fh:
                fh.write("deny")
            with open("/proc/self/uid_map", "w") as fh:
                fh.write(f"{uid} {uid} 1")
            with open("/proc/self/gid_map", "w") as fh:
                fh.write(f"{gid} {gid} 1")
            return ["user", "pid", "mount", "network", "ipc", "uts"]
        except OSError:
            return []
    return []


def _wait(pid: int, control_r: int, setup_r: int, in_pid_namespace: bool) -> dict:
    """Wait until the student's process exits or the grader closes the control pipe; then kill
    everything the job started and return how the student's process ended."""
    setup = b""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    watch = [control_r, setup_r] + ([pidfd] if pidfd is not None else [])
    status = None
    stopped_by_grader = False
    while status is None:
        ready, _, _ = select.select(watch, [], [], 0.05 if pidfd is None else None)
        if setup_r in ready:
            chunk = os.read(setup_r, 65536)
            setup += chunk
            if not chunk or len(setup) > 1 << 16:
                watch.remove(setup_r)
        if control_r in ready:  # EOF: time or output ran out, or the grader is gone
            stopped_by_grader = True
            break
        done, wstatus = os.waitpid(pid, os.WNOHANG)
        if done:
            status = wstatus
    # In a PID namespace, the death of its first process (the student's) kills all the others
    # and waitpid returns once they are gone. Without one, hunt down every descendant.
    for kill in (os.killpg, os.kill):  # its process group (it leads one), then itself
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if status is None:
        _, status = os.waitpid(pid, 0)
    if not in_pid_namespace:
        _kill_descendants()
    out: dict[str, Any] = {"stopped_by_grader": stopped_by_grader}
    if os.WIFSIGNALED(status):
        out["signal"] = os.WTERMSIG(status)
    else:
        out["exit_code"] = os.WEXITSTATUS(status)
    try:
        out["setup"] = json.loads(setup.decode()) if setup else None
    except ValueError:
        out["setup"] = None
    return out


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/PID/task/*/children; empty when it is gone)."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(c) for c in fh.read().split()]
        except OSError:
            continue
    return out


def _descendants(root: int) -> list[int]:
    """Every process below ``root``."""
    out, todo = [], [root]
    while todo:
        for child in _children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def _kill_descendants() -> None:
    """Kill every descendant of this process (a subreaper: orphans, setsid ones too, are ours)."""
    for _ in range(1000):
        pids = _descendants(os.getpid()) if os.path.isdir("/proc") else []
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            if not pids:
                return
        if not pids:
            return
        time.sleep(0.005)


# --- the student's process: locking in -------------------------------------------------------


def _mountpoints() -> list[tuple[str, int]]:
    """(mount point, its flags) for each mount, from /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            flags = 0
            for opt in fields[5].split(","):
                flags |= _MOUNT_FLAGS.get(opt, 0)
            out.append((point, flags))
    return out


def _python_paths() -> list[str]:
    """The folders Python imports from (the interpreter's, the environment's, sys.path)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths |= {p for p in sys.path if p and os.path.isdir(p)}
    out: list[str] = []
    for p in sorted(os.path.realpath(p) for p in paths):
        if not any(p == q or p.startswith(q + "/") for q in out):  # a folder inside one we have
            out.append(p)
    return out


def _expose_python(uid: int | None) -> list[str]:
    """Let another user import from Python folders that sit under a private folder (a Python
    in /root, mode 700): cover the private folder with an empty one and bind only the Python
    folders back into it. The rest of the private folder stays out of sight."""
    if uid is None:
        return []
    blocked: dict[str, list[str]] = {}
    for path in _python_paths():
        parts = path.strip("/").split("/")
        for k in range(1, len(parts)):
            ancestor = "/" + "/".join(parts[:k])
            if not os.stat(ancestor).st_mode & 0o001:  # others may not pass through
                blocked.setdefault(ancestor, []).append(path)
                break
    exposed = []
    for private, inside in blocked.items():
        fds = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in inside]
        mount("tmpfs", private, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
        for p, fd in fds:
            os.makedirs(p, exist_ok=True)
            mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC)
            os.close(fd)
            exposed.append(p)
    return exposed


def _lock_filesystem(hide: list[str], tmp_size: int, uid: int | None, gid: int | None) -> dict:
    """Mount namespace: every mount read-only, hidden paths under empty mounts, a fresh /tmp."""
    done = {}
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        done["own /proc"] = True
    except OSError:
        done["own /proc"] = False
    done["python folders exposed"] = _expose_python(uid)
    ro_failed = []
    for point, flags in _mountpoints():
        if point.startswith("/proc"):
            continue
        try:
            mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except OSError:
            ro_failed.append(point)
    done["read-only filesystem"] = not ro_failed
    hidden = []
    for path in hide:
        try:
            if os.path.isdir(path):
                mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=000")
            elif os.path.exists(path):
                mount("/dev/null", path, None, MS_BIND)
            else:
                continue
            hidden.append(path)
        except OSError:
            pass
    done["hidden paths"] = sorted(hidden)
    owner = f",uid={uid},gid={gid}" if uid is not None else ""
    for point in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(point):
            try:
                mount("tmpfs", point, "tmpfs", MS_NOSUID | MS_NODEV,
                      f"size={tmp_size},mode={'700' if point == '/tmp' else '1777'}{owner if point == '/tmp' else ''}")
            except OSError:
                if point == "/tmp":
                    raise
    done["fresh /tmp"] = True
    return done


def _set_limits(limits: dict) -> dict:
    done = {}
    wanted = {
        "memory": (resource.RLIMIT_AS, limits["memory"]),
        "cpu time": (resource.RLIMIT_CPU, limits["cpu_seconds"]),
        "file size": (resource.RLIMIT_FSIZE, limits["file_size"]),
        "open files": (resource.RLIMIT_NOFILE, limits["open_files"]),
        "core dumps": (resource.RLIMIT_CORE, 0),
    }
    for name, (which, value) in wanted.items():
        try:
            hard = value + 1 if which == resource.RLIMIT_CPU else value
            resource.setrlimit(which, (value, hard))
            done[name] = True
        except (ValueError, OSError):
            done[name] = False
    return done


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("could not change user")


def _clear_environment(workdir: str) -> None:
    keep = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                                      "MKL_ENABLE_INSTRUCTIONS") if k in os.environ}
    os.environ.clear()
    os.environ.update(keep)
    os.environ.update({
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
        "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": workdir,
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    })


def _lock_in(job: dict, namespaces: list[str], result_w: int, output_w: int, setup_w: int) -> str:
    """Apply every protection available; report them on ``setup_w`` and close it. -> workdir."""
    report: dict[str, Any] = {"namespaces": namespaces}
    _close_fds_except({result_w, output_w, setup_w})
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_w, 1)
    os.dup2(output_w, 2)
    os.close(null)
    os.close(output_w)
    report["output to the grader's pipe"] = True
    try:
        os.setsid()
    except OSError:
        pass
    limits = job["limits"]
    uid, gid = job.get("uid"), job.get("gid")
    joined = 0  # first, while /sys/fs/cgroup is writable
    for procs in job.get("cgroups", []):
        try:
            with open(procs, "w") as fh:
                fh.write("0")  # this process; its children follow
            joined += 1
        except OSError:
            pass
    report["cgroups"] = bool(job.get("cgroups")) and joined == len(job["cgroups"])
    tasks_before = _tasks_of(os.getuid()) if uid is None else 0  # before /proc shows only the job
    if "mount" in namespaces:
        report.update(_lock_filesystem(job["hide"], limits["tmp_size"], uid, gid))
        workdir = "/tmp"
    else:
        workdir = job["workdir"]
    if "user" in namespaces:
        # Drop the capabilities the user namespace gave us, so the mounts above stay put.
        report["capabilities dropped"] = _drop_capabilities()
    report.update(_set_limits(limits))
    if uid is not None:
        _drop_privileges(uid, gid)
        report["unprivileged user"] = True
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the user change, which clears it
    except OSError:
        pass
    try:
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        report["no new privileges"] = True
    except OSError:
        report["no new privileges"] = False
    # The process limit counts every task of the user: with a user of its own, only the job's;
    # otherwise (not root) the grader's too, so they are added.
    cap = limits["processes"] + (0 if uid is not None else tasks_before)
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap))
        report["processes"] = uid is not None or "pid" in namespaces
    except (ValueError, OSError):
        report["processes"] = False
    _clear_environment(workdir)
    report["cleared environment"] = True
    os.chdir(workdir)
    _write_all(setup_w, json.dumps(report).encode())
    os.close(setup_w)
    return workdir


def _tasks_of(uid: int) -> int:
    """Threads and processes running as ``uid`` (what RLIMIT_NPROC counts)."""
    count = 0
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/status") as fh:
                    status = fh.read()
                if int(status.split("Uid:")[1].split()[0]) == uid:
                    count += int(status.split("Threads:")[1].split()[0])
            except (OSError, IndexError, ValueError):
                continue
    return count


def _drop_capabilities() -> bool:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    try:
        for cap in range(64):
            try:
                prctl(24, cap)  # PR_CAPBSET_DROP
            except OSError:
                pass
        header, data = Header(0x20080522, 0), (Data * 2)()
        return libc().capset(ctypes.byref(header), ctypes.byref(data)) == 0
    except Exception:
        return False


# --- the student's process: loading and collecting -------------------------------------------


class BoundedOutput(io.TextIOBase):
    """sys.stdout/stderr: keeps nothing, raises OutputFlood past ``limit`` characters."""

    encoding = "utf-8"

    def __init__(self, limit: int) -> None:
        self.limit, self.count = limit, 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        n = len(text) if isinstance(text, (str, bytes)) else 0
        self.count += n
        if self.count > self.limit:
            raise OutputFlood(f"printed more than {self.limit} characters")
        return n


def load_cells(ns: dict, cells: list, skip: set, cell_timeout: float, output: BoundedOutput,
               send: Callable) -> None:
    """Execute the cells in ``ns`` one by one; report each start and each problem."""
    for label, source in cells:
        if label in skip:
            send({"ev": "problem", "label": label, "status": "skipped",
                  "detail": "it hung or ended the process in an earlier attempt"})
            continue
        try:
            code = compile(source, f"<{label}>", "exec")
        except (SyntaxError, ValueError) as exc:
            send({"ev": "problem", "label": label, "status": "error", "detail": describe(exc)})
            continue
        send({"ev": "cell", "label": label})
        output.count = 0  # each cell may print up to the limit
        caught = None
        try:
            with time_limit(cell_timeout):
                exec(code, ns)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included: keep loading
            caught = exc
        if isinstance(caught, CallTimeout):
            send({"ev": "problem", "label": label, "status": "timeout",
                  "detail": f"did not finish in {cell_timeout:g} s"})
        elif isinstance(caught, OutputFlood):
            send({"ev": "problem", "label": label, "status": "output_flood", "detail": str(caught)})
        elif caught is not None:
            send({"ev": "problem", "label": label, "status": "error", "detail": describe(caught)})


class _NoIPython:
    """``get_ipython()`` in a script exported from Jupyter: magics and shell lines do nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def student_process(job: dict, namespaces: list[str], result_w: int, output_w: int, setup_w: int) -> None:
    """Body of the student's process: lock in, load the cells, collect the item, send it."""
    try:
        _lock_in(job, namespaces, result_w, output_w, setup_w)
    except BaseException as exc:
        try:
            _write_all(setup_w, json.dumps({"setup_error": f"{type(exc).__name__}: {exc}"}).encode())
        finally:
            os._exit(71)
    limits = job["limits"]

    def send(header: dict, blobs: list[bytes] = ()) -> None:
        try:
            _write_all(result_w, message(header, blobs))
        except OSError:
            os._exit(3)  # the grader is gone or stopped listening

    output = BoundedOutput(limits["output_limit"])
    sys.stdout = sys.stderr = output
    sys.stdin = io.StringIO("")

    import importlib

    import numpy as np
    import torch

    from . import public

    public.IN_GRADER = True
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    chapter = importlib.import_module(job["chapter_module"])
    item = {i.name: i for i in chapter.ITEMS}[job["item"]]
    every_forbidden = sorted({n for i in chapter.ITEMS for n in i.forbidden})
    called: list[str] = []
    with forbidden_guards(every_forbidden, called):
        ns: dict = {"__name__": "__main__", "__builtins__": __builtins__, "get_ipython": _NoIPython}
        load_cells(ns, job["cells"], set(job["skip"]), limits["cell_timeout"], output, send)
        send({"ev": "loaded"})
        output.count = 0
        called.clear()
        try:
            student = Student(ns, call_timeout=limits["call_timeout"])
            # Answer names come with the job (from the trusted side), not from this process's
            # copy of the item, which the submission may have changed.
            values = student.answers(*job["answers"]) if job.get("answers") else item.gather(student)
            blobs: list[bytes] = []
            encoded = encode_value(values, blobs, limits["result_bytes"] // 2)
        except BaseException as exc:
            send({"ev": "collect_failed", "detail": describe(exc)})
            os._exit(0)
    send({"ev": "result", "values": encoded,
          "forbidden": sorted({n for n in called if n in item.forbidden})}, blobs)
    os._exit(0)  # skip atexit handlers and threads the submission may have left behind

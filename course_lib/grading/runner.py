"""Grade a folder of submissions: the trusted side. It never imports or runs student code.

For each student and item, a job goes to the grading server (``server``), which forks a
supervisor and the student's process (``sandbox``). This process reads what comes back from
pipes it owns, with a deadline and a size limit, decodes it (``protocol``: JSON and raw array
bytes, never pickle), runs the item's checks on the validated values, caps the points, and
writes the CSV and one feedback file per student.
"""
from __future__ import annotations

import ast
import concurrent.futures
import csv
import json
import os
import queue
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .chapters import CHAPTERS, chapter_module  # noqa: F401  (CHAPTERS: re-exported)
from .checks import Got, StudentError, excerpt, run_checks
from .protocol import FrameReader, ProtocolError, decode_value

SUFFIXES = (".ipynb", ".py")
SKIP_TAGS = ("skip-grading", "public-checks")  # slow "try it" demos and check cells are not run
COLUMNS = ("student", "item", "points", "max_points", "status", "reason")
TOTAL = "TOTAL"
MAX_SUBMISSION_BYTES = 20 << 20
MAX_RETRIES = 3  # loads re-run per student without a cell that hung or ended the process
REPO = Path(__file__).resolve().parents[2]
REPO_SOLUTIONS = str((REPO / "solutions").resolve())


@dataclass
class Row:
    """One line of the grades CSV."""

    student: str
    item: str
    points: float
    max_points: float
    status: str
    reason: str = ""


@dataclass
class Submission:
    """A student and their exercise file (``path`` is None when none was found: see ``problem``)."""

    student: str
    path: Path | None
    problem: str = ""
    note: str = ""  # e.g. which file was graded and which ignored


class Rows(list):
    """The CSV rows, with ``protections``: what isolated the students' processes in this run."""

    protections: list[str] = []
    missing: list[str] = []


# --- finding and reading submissions ---------------------------------------------------------


def _visible(path: Path) -> bool:
    return not any(part.startswith(".") for part in path.parts)


def _pick(files: list[Path], exercise: str) -> tuple[Path | None, str, str]:
    """The exercise file among ``files`` (named like the exercise if possible, .ipynb before .py):
    (path, problem, note)."""
    if not files:
        return None, "no .ipynb or .py file found", ""
    named = [f for f in files if f.stem.startswith(exercise[:2])]
    pool = named or files
    for suffix in SUFFIXES:
        same = sorted(f for f in pool if f.suffix == suffix)
        if len(same) == 1:
            others = [f.name for f in pool if f != same[0]]
            note = f"graded {same[0].name}; ignored {', '.join(sorted(others))}" if others else ""
            return same[0], "", note
        if len(same) > 1:
            return None, f"several candidate files: {', '.join(f.name for f in same)}", ""
    return None, "no .ipynb or .py file found", ""


def find_submissions(folder: Path, exercise: str) -> list[Submission]:
    """One Submission per student, sorted by name.

    A file ``alice.ipynb`` or ``alice.py`` directly in ``folder`` is alice's submission (the
    .ipynb wins when both exist, and the note says so); a sub-folder ``alice/`` holds alice's
    files, and the one named like the exercise (``02_...``) is graded. Hidden files and
    symbolic links are ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"submissions folder {folder} does not exist")
    found: dict[str, Submission] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir():
            inside = entry.resolve()
            # Not through links: a link to solutions/ must not become a submission.
            files = [f for f in entry.rglob("*") if f.is_file() and not f.is_symlink()
                     and f.suffix in SUFFIXES and _visible(f.relative_to(entry))
                     and f.resolve().is_relative_to(inside)]
            path, problem, note = _pick(files, exercise)
            found[entry.name] = Submission(entry.name, path, f"{entry.name}/: {problem}" if problem else "", note)
        elif entry.is_file() and entry.suffix in SUFFIXES:
            if entry.stem in found and found[entry.stem].path is not None:
                first = found[entry.stem]  # alice.ipynb came first in sorted order and wins
                first.note = f"graded {first.path.name}; ignored {entry.name}"
                continue
            found[entry.stem] = Submission(entry.stem, entry)
    return [found[k] for k in sorted(found)]


def _uncomment_magics(source: str) -> str:
    return "\n".join(("# " + line) if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def _parse(source: str) -> ast.Module:
    """ast.parse without the warnings a student's text may trigger (e.g. invalid escapes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)


def _statements(source: str) -> list[tuple[int, str]]:
    """A plain script as (first line, source) chunks: each top-level statement, or, when the
    script does not parse, chunks split where a line starts at column 0 with code."""
    lines = source.splitlines()
    try:
        tree = _parse(source)
    except (SyntaxError, ValueError):
        tree = None
    if tree is not None:
        out = []
        for node in tree.body:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            out.append((start, "\n".join(lines[start - 1:node.end_lineno])))
        return out
    out, start = [], None
    continuation = re.compile(r"(else|elif|except|finally)\b|[)\]}#@]")
    for k, line in enumerate(lines, 1):
        opens = line[:1].strip() and not continuation.match(line)
        if opens and start is not None and not lines[k - 2].startswith("@"):
            out.append((start, "\n".join(lines[start - 1:k - 1])))
            start = None
        if start is None and line.strip() and not line.startswith("#"):
            start = k
    if start is not None:
        out.append((start, "\n".join(lines[start - 1:])))
    return out


def skipped_sources(module) -> tuple[set[str], set[str], set[str]]:
    """From the chapter's exercise (its committed file, or ``module.SOLUTION``): the sources of
    its skipped cells, the statements (``ast.dump``) found only in them, and the others'."""
    import jupytext

    path = REPO / "exercises" / f"{module.EXERCISE}.py"
    if hasattr(module, "SOLUTION"):
        nb = jupytext.reads(module.SOLUTION, fmt="py:percent")
    elif path.exists():
        nb = jupytext.read(path)
    else:
        return set(), set(), set()
    skipped, skip_stmts, other_stmts = set(), set(), set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = _uncomment_magics(cell.source)
        try:
            dumps = {ast.dump(n) for n in _parse(source).body}
        except SyntaxError:
            dumps = set()
        if set(SKIP_TAGS) & set(cell.metadata.get("tags", [])):
            skipped.add(_normal(source))
            skip_stmts |= dumps
        else:
            other_stmts |= dumps
    return skipped, skip_stmts - other_stmts, other_stmts


def read_cells(path: Path, module=None) -> list[tuple[str, str]]:
    """The code to run, as (label, source): notebook or jupytext cells, or a plain script's
    statements. IPython magics and ``!`` lines are commented out; cells tagged
    ``skip-grading``/``public-checks`` are left out, and so are untagged cells (or, in a plain
    script, statements) identical to the ones the chapter's exercise tags so."""
    import jupytext
    import nbformat

    path = Path(path)
    if path.stat().st_size > MAX_SUBMISSION_BYTES:
        raise ValueError(f"the file is larger than {MAX_SUBMISSION_BYTES >> 20} MB")
    skipped, skip_stmts, _ = skipped_sources(module) if module is not None else (set(), set(), set())
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        nb = nbformat.reads(text, as_version=4)
    elif re.search(r"^# %%", text, flags=re.M):
        nb = jupytext.reads(text, fmt="py:percent")
    else:  # a plain script, e.g. Jupyter's or Colab's "Download .py"
        cells = []
        for line, source in _statements(_uncomment_magics(text)):
            try:
                dump = ast.dump(_parse(source).body[0])
            except (SyntaxError, IndexError, ValueError):
                dump = None
            if dump is not None and dump in skip_stmts and not source.lstrip().startswith(("import", "from")):
                continue
            cells.append((f"line {line}", source))
        return cells
    cells, k = [], 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        k += 1
        source = _uncomment_magics(cell.source)
        if set(SKIP_TAGS) & set(cell.get("metadata", {}).get("tags", [])) or _normal(source) in skipped:
            continue
        cells.append((f"code cell {k}", source))
    return cells


# --- the server and one job ---------------------------------------------------------------


@dataclass
class Limits:
    """What one item of one student may use."""

    timeout: float = 30.0  # seconds to load the cells, and again to collect
    memory: int = 5 << 30  # bytes of address space (torch and course_lib take about 3.6 GB)
    job_memory: int = 2 << 30  # bytes the job's processes may add together (a cgroup, as root)
    processes: int = 32
    output_limit: int = 100_000  # characters printed per cell or call; bytes written to fd 1/2
    file_size: int = 64 << 20
    tmp_size: int = 128 << 20
    open_files: int = 256
    result_bytes: int = 64 << 20

    def for_job(self) -> dict:
        return {"memory": self.memory, "cpu_seconds": int(2 * self.timeout + 10),
                "processes": self.processes, "output_limit": self.output_limit,
                "file_size": self.file_size, "tmp_size": self.tmp_size,
                "open_files": self.open_files, "result_bytes": self.result_bytes,
                "cell_timeout": self.timeout / 2, "call_timeout": self.timeout / 3}


class Cgroups:
    """A memory and a pids cgroup per job slot under the grader's own (cgroup v1, as root):
    they bound the memory and the processes of everything a job starts, together."""

    def __init__(self, slots: int, memory: int, processes: int) -> None:
        self.dirs: dict[int, list[Path]] = {slot: [] for slot in range(slots)}
        settings = {"memory": {"memory.limit_in_bytes": memory, "memory.memsw.limit_in_bytes": memory},
                    "pids": {"pids.max": processes}}
        if os.geteuid() != 0:
            return
        try:
            own = {}
            for line in Path("/proc/self/cgroup").read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                for c in controllers.split(","):
                    own[c] = path
        except (OSError, ValueError):
            return
        for controller, values in settings.items():
            base = Path("/sys/fs/cgroup", controller) / own.get(controller, "/").lstrip("/")
            if controller not in own or not (base / "cgroup.procs").exists():
                continue
            for slot in range(slots):
                d = base / f"grading-{os.getpid()}-slot{slot}"
                try:
                    d.mkdir(exist_ok=True)
                    for name, value in values.items():
                        if (d / name).exists():
                            (d / name).write_text(str(value))
                    self.dirs[slot].append(d)
                except OSError:
                    continue

    def procs(self, slot: int) -> list[str]:
        """The cgroup.procs files a job's process writes itself into."""
        return [str(d / "cgroup.procs") for d in self.dirs[slot]]

    def close(self) -> None:
        for dirs in self.dirs.values():
            for d in dirs:
                try:
                    d.rmdir()
                except OSError:
                    pass


class Server:
    """The grading server process and the socket to it (see ``server``)."""

    def __init__(self, module, logdir: Path) -> None:
        self.lock = threading.Lock()
        self.module = module
        self.logdir = logdir
        self._start()

    def _start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {"PATH": os.defpath, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HOME": str(self.logdir),
               "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
        for key in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS"):
            if key in os.environ:
                env[key] = os.environ[key]
        self.log = open(self.logdir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "course_lib.grading.server", str(child.fileno())],
            pass_fds=[child.fileno()], env=env, cwd=str(self.logdir), stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=self.log, start_new_session=True)
        child.close()
        self.sock = parent
        init = json.dumps({"chapter_module": self.module.__name__,
                           "preload": list(getattr(self.module, "PRELOAD", []))}).encode()
        self.sock.sendall(struct.pack(">I", len(init)) + init)
        self.sock.settimeout(300)
        try:
            ready = self.sock.recv(5)
        except OSError:
            ready = b""
        self.sock.settimeout(None)
        if ready != b"ready":
            raise RuntimeError(f"the grading server did not start; see {self.logdir / 'server.log'}")

    def submit(self, job: dict, fds: list[int]) -> None:
        """Hand a job to the server: ``fds`` and the job as a memory file the supervisor reads
        (the server never holds a student's code)."""
        body = json.dumps(job).encode()
        if hasattr(os, "memfd_create"):
            job_fd = os.memfd_create("grading-job", os.MFD_CLOEXEC)
        else:
            handle, name = tempfile.mkstemp(prefix="grading-job-")
            os.unlink(name)
            job_fd = handle
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(job_fd, view):]
            self._send(fds + [job_fd])
        finally:
            os.close(job_fd)

    def _send(self, fds: list[int]) -> None:
        with self.lock:
            for attempt in (0, 1):
                try:
                    socket.send_fds(self.sock, [b"J"], fds)
                    return
                except OSError:
                    if attempt:
                        raise
                    self.close()
                    self._start()

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return b"?"  # nothing yet (never returned as data: see callers)
    except OSError:
        return b""


@dataclass
class Outcome:
    """How one job ended, as this process saw it."""

    status: str = ""  # graded, timeout, output_flood, crashed, invalid_result, forbidden, grader_error
    reason: str = ""
    phase: str = "load"
    values: dict | None = None
    problems: list = field(default_factory=list)
    setup: dict | None = None
    forbidden: list = field(default_factory=list)


def run_job(server: Server, job: dict, limits: Limits) -> Outcome:
    """Send one job, read its pipes until it ends or runs out of time or bytes; kill it."""
    control_r, control_w = os.pipe()
    status_r, status_w = os.pipe()
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    out = Outcome()
    try:
        server.submit(job, [control_r, status_w, result_w, output_w])
    finally:
        for fd in (control_r, status_w, result_w, output_w):
            os.close(fd)
    for fd in (status_r, result_r, output_r):
        os.set_blocking(fd, False)
    reader = FrameReader(limits.result_bytes + (4 << 20))
    labels = {label for label, _ in job["cells"]}
    status_bytes, output_bytes, cell = b"", 0, None
    open_fds = {status_r, result_r, output_r}
    start = time.monotonic()
    deadline = start + limits.timeout + 10  # start-up and locking in, then loading
    stop = ""  # why this process ended the job early
    status_deadline = None
    try:
        while status_r in open_fds or result_r in open_fds:
            now = time.monotonic()
            if not stop and now > deadline:
                stop = "timeout"
            if stop and status_deadline is None:
                os.close(control_w)  # the supervisor kills everything the job started
                control_w = -1
                status_deadline = now + 30
            if status_deadline is not None and now > status_deadline:
                out.status, out.reason = "grader_error", "the job's supervisor did not report"
                break
            wait = max(0.0, min(deadline, status_deadline or deadline) - now) if not stop else 1.0
            ready, _, _ = select.select(list(open_fds), [], [], min(wait, 1.0))
            for fd in ready:
                data = _read(fd)
                if data == b"?":
                    continue
                if not data:
                    open_fds.discard(fd)
                    os.close(fd)
                    continue
                if fd == output_r:
                    output_bytes += len(data)
                    if output_bytes > limits.output_limit and not stop:
                        stop = "output_flood"
                elif fd == status_r:
                    status_bytes += data
                    if len(status_bytes) > 1 << 20 and not stop:
                        stop = "grader_error"
                elif fd == result_r and not stop and out.values is None:
                    try:
                        messages = reader.feed(data)
                    except ProtocolError as exc:
                        stop, out.reason = "invalid_result", f"the submission's process {exc}"
                        continue
                    for header, blobs in messages:
                        event = header.get("ev")
                        label = header.get("label")
                        if event == "cell" and label in labels:
                            cell = label
                        elif event == "problem" and label in labels:
                            status = header.get("status")
                            if status in ("error", "timeout", "output_flood", "skipped"):
                                out.problems.append((label, status, excerpt(str(header.get("detail", "")), 200)))
                            cell = None
                        elif event == "loaded" and out.phase == "load":
                            out.phase, cell = "collect", None
                            deadline = time.monotonic() + limits.timeout
                        elif event == "collect_failed":
                            stop = "crashed"
                            out.reason = ("the item's collect step failed: "
                                          + excerpt(str(header.get("detail", "")), 200))
                        elif event == "result" and out.phase == "collect":
                            try:
                                values = decode_value(header.get("values"), blobs)
                                if not isinstance(values, dict):
                                    raise ProtocolError("sent a result that is not a dict")
                                forbidden = header.get("forbidden", [])
                                if not isinstance(forbidden, list):
                                    raise ProtocolError("sent a malformed list of calls")
                            except ProtocolError as exc:
                                stop, out.reason = "invalid_result", f"the submission's process {exc}"
                                break
                            out.values = values
                            out.forbidden = [f for f in forbidden if isinstance(f, str)]
                            # The process ends by itself after sending; one that lingers is stopped.
                            deadline = min(deadline, time.monotonic() + 2)
                        # anything else (including a result before loading ended) is ignored
    finally:
        for fd in open_fds:
            os.close(fd)
        if control_w >= 0:
            os.close(control_w)
    try:
        status = json.loads(status_bytes.decode()) if status_bytes else {}
    except ValueError:
        status = {}
    out.setup = status.get("setup") if isinstance(status.get("setup"), dict) else None
    if out.status == "grader_error":
        return out
    if "supervisor_error" in status or (out.setup or {}).get("setup_error"):
        out.status = "grader_error"
        out.reason = f"grader error: {status.get('supervisor_error') or out.setup.get('setup_error')}"
        return out
    if out.values is not None and stop in ("", "timeout", "output_flood"):
        out.status = "graded"  # the result came in full before anything went wrong
    elif stop == "timeout":
        out.status = "timeout"
        if out.phase == "load":
            if cell is not None:  # later attempts skip the cell that hung
                out.problems.append((cell, "timeout", "was still running when loading was stopped"))
            out.reason = f"loading the submission took more than {limits.timeout + 10:g} s"
        else:
            out.reason = f"did not finish within {limits.timeout:g} s (an endless loop?)"
    elif stop == "output_flood":
        out.status = "output_flood"
        out.reason = f"wrote more than {limits.output_limit} bytes of output"
    elif stop in ("invalid_result", "crashed"):
        out.status = stop
    elif stop == "grader_error":
        out.status, out.reason = "grader_error", "grader error: the supervisor's report was too long"
    else:
        how = (f"signal {status['signal']}" if "signal" in status
               else f"exit code {status.get('exit_code', '?')}")
        if status.get("signal") == 24:
            how += ", out of CPU time"
        elif status.get("signal") == 9:
            how += ", killed: out of memory?"
        if out.phase == "load" and cell is not None:
            out.problems.append((cell, "crashed", f"ended the process ({how})"))
        out.status = "crashed"
        out.reason = (f"the process ended ({how}) "
                      f"{'while loading' if out.phase == 'load' else 'while collecting the results'}")
    return out


# --- one student, a batch -------------------------------------------------------------------


def _fmt(points: float) -> str:
    return f"{points:g}"


def _load_summary(problems: list) -> str:
    """'while loading: code cell 4 error: NameError: ...; ...', or '' when every cell loaded."""
    shown = [f"{label} {status}: {detail}" for label, status, detail in problems if status != "skipped"]
    return excerpt(f"while loading: {'; '.join(shown)}", 600) if shown else ""


def item_row(student: str, item, out: Outcome) -> Row:
    """One item's outcome as a CSV row: points (capped), status, a reason per lost point."""
    note = _load_summary(out.problems)
    if out.status == "graded" and out.forbidden:
        called = sorted({f for f in out.forbidden if f in item.forbidden})
        if called:
            return Row(student, item.name, 0, item.max_points, "forbidden",
                       f"calls {', '.join(called)}, which this item asks you to write yourself")
    if out.status != "graded":
        return Row(student, item.name, 0, item.max_points, out.status,
                   out.reason + (f" [{note}]" if note else ""))
    results = run_checks(item, Got(out.values))
    points = min(sum(p for _, p, _, _ in results), item.max_points)
    lost = [(name, reason) for name, p, m, reason in results if p < m]
    reasons = {reason for _, reason in lost}
    if lost and len(lost) == len(results) and len(reasons) == 1:
        text = f"all checks: {reasons.pop()}"  # e.g. an untouched stub: say it once
    else:
        text = " | ".join(f"{name}: {reason}" for name, reason in lost)
    if lost and note:
        text += f" [{note}]"
    status = "graded"
    kinds = {v.kind for v in out.values.values() if isinstance(v, StudentError)}
    if points == 0 and len(kinds) == 1 and kinds <= {"timeout", "output_flood"}:
        status = kinds.pop()  # every call hung, or every call flooded: say so in the status
    return Row(student, item.name, points, item.max_points, status, text)


class Grader:
    """Grades the students of one chapter; holds the server, the job slots and the protections."""

    def __init__(self, module, limits: Limits, workroot: Path, hide: list[str], jobs: int,
                 isolation: str | None = None, uid_base: int = 61000) -> None:
        self.module, self.limits, self.workroot, self.hide = module, limits, workroot, hide
        if isolation is None:
            isolation = ("root" if os.geteuid() == 0 else "userns") if sys.platform.startswith("linux") else "none"
        self.isolation = isolation
        self.root = os.geteuid() == 0
        self.uid_base = uid_base
        self.slots: queue.Queue[int] = queue.Queue()
        for slot in range(jobs):
            self.slots.put(slot)
        self.setups: list[dict] = []
        self.cgroups = Cgroups(jobs, limits.job_memory, limits.processes) if isolation == "root" else None
        self.server = Server(module, workroot)

    def job(self, item, cells, skip: set[str], slot: int) -> dict:
        workdir = self.workroot / f"slot{slot}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(mode=0o700)
        uid = gid = None
        if self.root and self.isolation != "userns":
            uid = gid = self.uid_base + slot
            os.chown(workdir, uid, gid)
        answers = sorted({a for c in item.checks for a in c.answers}) if item.collect is None else []
        return {"chapter_module": self.module.__name__, "item": item.name, "cells": cells, "answers": answers,
                "skip": sorted(skip), "limits": self.limits.for_job(), "isolation": self.isolation,
                "uid": uid, "gid": gid, "hide": self.hide, "workdir": str(workdir),
                "cgroups": self.cgroups.procs(slot) if self.cgroups else []}

    def run(self, item, cells, skip: set[str]) -> Outcome:
        slot = self.slots.get()
        try:
            out = run_job(self.server, self.job(item, cells, skip, slot), self.limits)
        finally:
            shutil.rmtree(self.workroot / f"slot{slot}", ignore_errors=True)
            self.slots.put(slot)
        if out.setup:
            self.setups.append(out.setup)
        return out

    def student(self, sub: Submission) -> list[Row]:
        """All item rows of one student, then their TOTAL row."""
        items = self.module.ITEMS
        rows: list[Row] = []
        cells, problem = None, sub.problem
        if sub.path is not None:
            try:
                cells = read_cells(sub.path, self.module)
            except Exception as exc:  # invalid JSON, unreadable or huge file
                problem = f"could not read {sub.path.name}: {type(exc).__name__}: {excerpt(str(exc), 150)}"
        if cells is None:
            rows = [Row(sub.student, i.name, 0, i.max_points, "no_submission", problem) for i in items]
            load_problems: dict = {}
        else:
            skip: set[str] = set()
            load_problems = {}
            retries = MAX_RETRIES  # per student: a notebook of many slow cells stays bounded
            for k, item in enumerate(items):
                while True:
                    out = self.run(item, cells, skip)
                    if k == 0:  # every item loads the same cells: report the first item's view
                        for p in out.problems:
                            if p[1] != "skipped":
                                load_problems.setdefault(p[0], p)
                    # A cell that hung or killed the process once will again: skip it from now
                    # on, and if it stopped the loading, grade this item again without it.
                    stuck = {label for label, status, _ in out.problems if status in ("timeout", "crashed")}
                    new, skip = stuck - skip, skip | stuck
                    if not (new and out.status in ("timeout", "crashed") and out.phase == "load"
                            and retries > 0):
                        break
                    retries -= 1
                rows.append(item_row(sub.student, item, out))
        total = sum(r.points for r in rows)
        notes = [n for n in (sub.note, _load_summary(list(load_problems.values()))) if n]
        rows.append(Row(sub.student, TOTAL, total, sum(i.max_points for i in items), "", "; ".join(notes)))
        return rows

    def protections(self) -> tuple[list[str], list[str]]:
        """(active, not active) protections, as seen in every job of the run."""
        lim = self.limits
        active = ["a separate process per student and item, returning JSON and raw array bytes only "
                  "(no pickle), read with a deadline and a size limit; checks run in this process",
                  f"wall time {lim.timeout:g} s to load and again to collect",
                  f"output {lim.output_limit} characters per cell or call, {lim.output_limit} bytes "
                  "written to a pipe the grader owns",
                  "every process of the job killed when the item ends"]
        missing = []
        names = {"memory": f"memory {lim.memory / 2**30:g} GiB of address space",
                 "cpu time": f"CPU time {int(2 * lim.timeout + 10)} s",
                 "processes": f"at most {lim.processes} processes and threads",
                 "file size": f"files up to {lim.file_size >> 20} MiB",
                 "cleared environment": "a cleared environment",
                 "no new privileges": "no new privileges (setuid programs have no effect)",
                 "unprivileged user": f"an unprivileged user of its own (uid {self.uid_base}+slot)",
                 "read-only filesystem": "every existing mount read-only",
                 "fresh /tmp": f"an empty working folder (/tmp, {lim.tmp_size >> 20} MiB) of its own",
                 "own /proc": "its own /proc (no other processes visible)",
                 "capabilities dropped": "no capabilities in its user namespace",
                 "cgroups": f"a memory cgroup ({lim.job_memory / 2**30:g} GiB for all the job's "
                            f"processes together) and a pids cgroup"}
        setups = self.setups
        if not setups:
            return active, ["(no job ran)"]
        namespaces = set.intersection(*(set(s.get("namespaces") or []) for s in setups))
        for ns, text in (("pid", "a PID namespace (setsid escapees die with the job)"),
                         ("network", "no network (an empty network namespace)"),
                         ("mount", "a mount namespace"), ("user", "a user namespace")):
            (active if ns in namespaces else missing).append(text)
        for key, text in names.items():
            if all(s.get(key) for s in setups):
                active.append(text)
            elif key != "capabilities dropped" or "user" in namespaces:
                missing.append(text)
        hidden = set.intersection(*(set(s.get("hidden paths") or []) for s in setups))
        if REPO_SOLUTIONS in hidden:
            active.append("hidden (empty mounts over them): " + ", ".join(sorted(hidden)))
        else:
            missing.append("hiding the solutions and other submissions (they are readable)")
        return active, missing

    def close(self) -> None:
        self.server.close()
        if self.cgroups:
            self.cgroups.close()


def default_hidden(folder: Path, out: Path | None, feedback: Path | None) -> list[str]:
    """Paths the students' processes must not see: solutions, submissions, earlier grades."""
    paths = [REPO / "solutions", Path(folder)]
    if out is not None:
        paths.append(Path(out))
    if feedback is not None:
        paths.append(Path(feedback))
    return sorted({str(p.resolve()) for p in paths})


def grade_folder(chapter: str, folder: str | Path, out: str | Path | None = None, *,
                 timeout: float = 30.0, output_limit: int = 100_000, memory: int = 5 << 30,
                 job_memory: int = 2 << 30, jobs: int | None = None, feedback: str | Path | None = "auto",
                 hide: list[str] = (), isolation: str | None = None, progress=None) -> Rows:
    """Grade every submission in ``folder`` for ``chapter``; write the CSV to ``out`` if given,
    and one feedback file per student to ``feedback`` ("auto": ``<out stem>_feedback/`` beside
    the CSV). Returns the rows; ``rows.protections`` lists what isolated the students' code.
    """
    module = chapter_module(chapter)
    subs = find_submissions(Path(folder), module.EXERCISE)
    limits = Limits(timeout=timeout, output_limit=output_limit, memory=memory, job_memory=job_memory)
    if feedback == "auto":
        feedback = Path(out).with_name(Path(out).stem + "_feedback") if out is not None else None
    hidden = default_hidden(Path(folder), Path(out) if out else None, Path(feedback) if feedback else None)
    hidden += [str(Path(h).resolve()) for h in hide]
    jobs = jobs or max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2, 8))
    rows = Rows()
    workroot = Path(tempfile.mkdtemp(prefix="grading-"))
    os.chmod(workroot, 0o711)
    grader = None
    try:
        grader = Grader(module, limits, workroot, hidden, jobs, isolation=isolation)
        per_student: dict[str, list[Row]] = {}
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            futures = {pool.submit(grader.student, sub): sub for sub in subs}
            for future in concurrent.futures.as_completed(futures):
                sub = futures[future]
                try:
                    student_rows = future.result()
                except Exception as exc:  # the grader's own failure: this student, not the batch
                    reason = f"grader error: {type(exc).__name__}: {excerpt(str(exc), 150)}"
                    student_rows = [Row(sub.student, i.name, 0, i.max_points, "grader_error", reason)
                                    for i in module.ITEMS]
                    student_rows.append(Row(sub.student, TOTAL, 0, sum(i.max_points for i in module.ITEMS), "", reason))
                per_student[futures[future].student] = student_rows
                if progress:
                    progress(student_rows)
        for sub in subs:
            rows.extend(per_student[sub.student])
        rows.protections, rows.missing = grader.protections()
    finally:
        if grader is not None:
            grader.close()
        shutil.rmtree(workroot, ignore_errors=True)
    if out is not None:
        write_csv(rows, out)
    if feedback is not None:
        write_feedback(rows, subs, Path(feedback), module)
    return rows


# --- writing ------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def safe_cell(value: str, limit: int = 4000) -> str:
    """A CSV cell a spreadsheet shows as text: no formula, no control characters, bounded."""
    text = _CONTROL.sub(" ", str(value))
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if text[:1] in ("=", "+", "-", "@", "\t", "\r", "|", "%"):
        text = "'" + text
    return text


def write_csv(rows: list[Row], out: str | Path) -> None:
    """Write the rows with the header ``COLUMNS``; every text cell formula-escaped."""
    tmp = Path(str(out) + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([safe_cell(r.student), safe_cell(r.item), _fmt(r.points),
                             _fmt(r.max_points), safe_cell(r.status), safe_cell(r.reason)])
    os.replace(tmp, out)


def _file_name(student: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", student).strip("._")[:80] or "student"
    name, k = base, 1
    while name.lower() in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name.lower())
    return name + ".txt"


def write_feedback(rows: list[Row], subs: list[Submission], folder: Path, module) -> None:
    """One short text file per student: the items, points and reasons."""
    folder.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    by_student: dict[str, list[Row]] = {}
    for r in rows:
        by_student.setdefault(r.student, []).append(r)
    for sub in subs:
        mine = by_student.get(sub.student, [])
        total = next((r for r in mine if r.item == TOTAL), None)
        lines = [f"Exercises {module.EXERCISE}: feedback for {_CONTROL.sub(' ', sub.student)}"]
        if sub.path is not None:
            lines.append(f"Graded file: {sub.path.name}")
        if total is not None:
            lines.append(f"Total: {_fmt(total.points)} / {_fmt(total.max_points)}")
            if total.reason:
                lines.append(f"Note: {_CONTROL.sub(' ', total.reason)}")
        lines.append("")
        for r in mine:
            if r.item == TOTAL:
                continue
            status = "" if r.status == "graded" else f" ({r.status})"
            lines.append(f"{r.item}: {_fmt(r.points)} / {_fmt(r.max_points)}{status}")
            for part in filter(None, _CONTROL.sub(" ", r.reason).split(" | ")):
                lines.append(f"  - {part}")
        (folder / _file_name(sub.student, taken)).write_text("\n".join(lines) + "\n", encoding="utf-8")

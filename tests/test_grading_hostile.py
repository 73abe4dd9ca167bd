"""Hostile submissions: each tries to forge a grade, break out or starve the grader.

One batch of students is graded once (with short limits); every student is the solution of
the example chapter (course_lib.grading.example) with one cell swapped for an attack, so the honest verdict is known: the points an attack earns
are the points the student's own work deserves, never more, and every other item keeps full
marks. The batch must finish, leave no process behind and touch no file outside the
students' working folders. Attacks that only root's protections stop (hidden files, no
network, another user) are asserted only when the tests run as root; CI runs as root.
"""
from __future__ import annotations

import csv
import hashlib
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import jupytext
import nbformat
import pytest

from course_lib.grading.example import ITEMS
from course_lib.grading.runner import TOTAL, grade_folder
from tests.test_grading import CHAPTER, ROOT, SOLUTION, student

FULL = {item.name: item.max_points for item in ITEMS}
pytestmark = pytest.mark.timeout(600)  # the batch is graded once, in the first test that needs it
TIMEOUT = 8  # seconds per item: 4 failed an honest answer once on a loaded 2-core machine
JOB_MEMORY = 384 << 20  # the memory a job's processes may add together (a cgroup, as root)
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: hidden files, no network and "
                                                          "another user are root-only protections")
TOKEN = uuid.uuid4().hex[:12]  # marks files and processes the attacks create
SECRET = f"secret-{TOKEN}"
MARKER_DIR = ROOT / f"grading-escape-{TOKEN}"  # attacks try to write here (outside their folder)


def _outside_targets() -> list[str]:
    """Where the writing attack tries to write: the repository (a new folder and a planted
    module) and /var/lib. A job's /tmp is its own empty folder, so a repository cloned under
    /tmp is hidden from it: a write there lands in the job's folder (allowed) and is not tried;
    the tests still check that nothing appeared in the real repository."""
    targets = [str(MARKER_DIR / "x"), str(ROOT / "course_lib" / "grading" / f"planted-{TOKEN}.py"),
               f"/var/lib/{SECRET}"]
    return [t for t in targets if not Path(t).is_relative_to("/tmp")]

# --- the attacks (each replaces the answer cell defining the key) --------------------------------

FIND_RESULT_FD = '''
def _result_fds():
    import os
    return [int(fd) for fd in os.listdir("/proc/self/fd") if int(fd) > 2]
'''

ATTACKS = {
    # Forge a result message claiming points, then leave before the real one is sent.
    "forges_result": FIND_RESULT_FD + """
def scale(x, factor):
    import json, os, struct
    body = json.dumps({"ev": "result", "values": {}, "points": 100, "status": "graded",
                       "checks": [["multiplies by the factor", 100, 2, ""]], "blobs": []}).encode()
    for fd in _result_fds():
        try:
            os.write(fd, b"GRD1" + struct.pack(">I", len(body)) + body)
        except OSError:
            pass
    os._exit(0)
""",
    # Garbage on the result channel.
    "garbage_result": FIND_RESULT_FD + """
def scale(x, factor):
    import os
    for fd in _result_fds():
        try:
            os.write(fd, b"\\x80\\x04\\x95 not a grader message, maybe a pickle")
        except OSError:
            pass
    return x * factor
""",
    # Half a message (a header announcing a megabyte), then stall, catching every alarm.
    "stalls": FIND_RESULT_FD + """
def scale(x, factor):
    import os, struct, time
    for fd in _result_fds():
        try:
            os.write(fd, b"GRD1" + struct.pack(">I", 1 << 20) + b'{"ev": "res')
        except OSError:
            pass
    while True:
        try:
            time.sleep(1000)
        except BaseException:
            pass
""",
    # A header announcing 4 GB.
    "oversized_header": FIND_RESULT_FD + """
def scale(x, factor):
    import os, struct
    for fd in _result_fds():
        try:
            os.write(fd, b"GRD1" + struct.pack(">I", 0xFFFFFFF0) + b"{" * 1000)
        except OSError:
            pass
    return x * factor
""",
    # Endless small, valid messages.
    "message_flood": FIND_RESULT_FD + """
def scale(x, factor):
    import json, os, struct
    body = json.dumps({"ev": "cell", "label": "x" * 60000, "blobs": []}).encode()
    msg = b"GRD1" + struct.pack(">I", len(body)) + body
    fds = _result_fds()
    while True:
        for fd in fds:
            try:
                os.write(fd, msg)
            except OSError:
                pass
""",
    # Patch the checks and torch in its own process, try to edit the checks' file, hand in zeros.
    "patches_checks_and_torch": """
import torch
import course_lib.grading.checks as checks
import course_lib.grading.example as example
checks.run_checks = lambda item, got, public=False: [(c.name, 100.0, c.points, "") for c in item.checks]
checks.Got.tensor = lambda self, *a, **k: None
for item in example.ITEMS:
    object.__setattr__(item, "checks", ())
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.Tensor.__eq__ = lambda self, other: True
for module in (checks, example):
    try:
        open(module.__file__, "a").write("\\n# tampered\\n")
    except OSError:
        pass

def scale(x, factor):
    return torch.zeros_like(x)
""",
    # A tensor subclass that claims to equal everything.
    "tensor_subclass": """
class Liar(torch.Tensor):
    def __eq__(self, other):
        return True
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.equal, torch.allclose, torch.Tensor.equal, torch.Tensor.__eq__):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})

def scale(x, factor):
    return torch.zeros_like(x).as_subclass(Liar)
""",
    # Children that escape (setsid, a double fork), an attempt on the parent; the work is right.
    "escapes": f"""
def scale(x, factor):
    import os, subprocess
    if not getattr(scale, "spawned", False):
        scale.spawned = True
        subprocess.Popen(["sleep", "1000.{TOKEN[:6]}"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "1001.{TOKEN[:6]}"])
            os._exit(0)
        for pid in (os.getppid(), 1):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    if factor < 0:
        raise ValueError(factor)
    return x * factor
""",
    # Ask for 8 GiB (refused: the item loses its points, nothing else).
    "memory_bomb": """
def scale(x, factor):
    big = torch.empty(2**30, dtype=torch.float64)
    big.fill_(1.0)
    return big[:6].view(2, 3)
""",
    # Two processes asking for 300 MB each (each under the address-space limit), more than
    # the job's memory (JOB_MEMORY) together: the job's memory cgroup stops one. The answers
    # are right only if one was stopped.
    "memory_across_processes": """
def scale(x, factor):
    import os
    if not hasattr(scale, "granted"):
        pids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                try:
                    block = b"\\x01" * (300 << 20)  # written, so really in memory
                    os._exit(0 if len(block) else 1)
                except BaseException:
                    os._exit(1)
            pids.append(pid)
        scale.granted = all(os.waitpid(p, 0)[1] == 0 for p in pids)
    granted = scale.granted
    if factor < 0:
        raise ValueError(factor)
    return torch.zeros_like(x) if granted else x * factor
""",
    "fork_bomb": """
def scale(x, factor):
    import os
    while True:
        try:
            os.fork()
        except OSError:
            pass
""",
    # Output written below Python, straight to file descriptors 1 and 2.
    "fd_flood": """
def scale(x, factor):
    import os
    while True:
        os.write(1, b"x" * 65536)
        os.write(2, b"y" * 65536)
""",
    # An exception whose message cannot be printed.
    "unprintable_exception": """
class Weird(Exception):
    def __str__(self):
        raise RuntimeError("no")

def scale(x, factor):
    raise Weird()
""",
    # A huge message that starts like a formula.
    "huge_exception": """
def scale(x, factor):
    raise ValueError("=HYPERLINK(\\"http://evil\\") " + "A" * 100000)
""",
}

# Attacks on files, the environment and the network: the answer is right only when the
# attack fails, so a successful attack costs the point and shows in the reason.
SNOOP = """
import glob, os, socket

def _read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read(1000)
    except OSError:
        return b""

def _listed(path):
    try:
        return os.listdir(path)
    except OSError:
        return []

def _write(path):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write("escaped")
        return True
    except OSError:
        return False

def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False

succeeded = ATTACK
answer_half = 0.5 if not succeeded else 99.0
answer_letter = "B"
"""
SNOOPS = {
    "reads_solution": "len(_read({solution!r})) > 0",
    "reads_other_student": "len(_listed({submissions!r})) > 0 or len(_read({other!r})) > 0",
    # (writing under /tmp lands in the job's own empty /tmp, its working folder: allowed)
    "writes_outside": "any([_write(p) for p in {outside!r}])",
    "sees_secret": "{secret!r} in str(os.environ) or any({secret!r}.encode() in _read(p) "
                   "for p in glob.glob('/proc/*/environ'))",
    "reaches_network": "_connects({port})",
}


@pytest.fixture(scope="module")
def listener():
    """A TCP port on this machine that records whether anyone connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.setblocking(False)
    yield server
    server.close()


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _survivors() -> list[str]:
    """Processes whose command line carries the token (the escaping children)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if TOKEN[:6].encode() in cmd and b"pytest" not in cmd:
                found.append(f"{pid}: {cmd!r}")
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory, listener):
    """Grade every attacker once, as the command does; returns (rows by student, seconds, extra)."""
    subs = tmp_path_factory.mktemp("hostile")
    for name, source in ATTACKS.items():
        nbformat.write(student({"scale": source}), subs / f"{name}.ipynb")
    where = dict(solution=str(SOLUTION), submissions=str(subs), other=str(subs / "escapes.ipynb"),
                 marker=str(MARKER_DIR / "x"), secret=SECRET, port=listener.getsockname()[1],
                 outside=_outside_targets())
    for name, attack in SNOOPS.items():
        source = SNOOP.replace("ATTACK", attack.format(**where))
        nbformat.write(student({"answer_half": source}), subs / f"{name}.ipynb")
    nbformat.write(student(), subs / "=HYPERLINK(1).ipynb")  # a formula as a name
    nbformat.write(student(), subs / "honest.ipynb")
    before_subs, before_grading = _digest(subs), _digest(ROOT / "course_lib" / "grading")
    os.environ["GRADING_TEST_SECRET"] = SECRET  # in the grader's environment, not the students'
    out = subs.parent / "hostile.csv"
    start = time.monotonic()
    try:
        rows = grade_folder(CHAPTER, subs, out, timeout=TIMEOUT, output_limit=20_000, jobs=2,
                            job_memory=JOB_MEMORY)
    finally:
        del os.environ["GRADING_TEST_SECRET"]
    seconds = time.monotonic() - start
    with open(out, newline="") as fh:
        csv_rows = list(csv.DictReader(fh))
    by: dict = {}
    for r in rows:
        by.setdefault(r.student, {})[r.item] = r
    accepted = []
    try:
        while True:
            accepted.append(listener.accept())
    except BlockingIOError:
        pass
    extra = {"csv": csv_rows, "rows": rows, "subs": subs, "before_subs": before_subs,
             "before_grading": before_grading, "connections": accepted,
             "feedback": subs.parent / "hostile_feedback"}
    return by, seconds, extra


def points(by, name):
    return {item: r.points for item, r in by[name].items() if item != TOTAL}


# --- the verdicts -------------------------------------------------------------------------


def test_the_batch_finishes_in_bounded_time_with_every_student_and_item(graded):
    by, seconds, extra = graded
    assert len(by) == len(ATTACKS) + len(SNOOPS) + 2
    for name, rows in by.items():
        assert list(rows) == [i.name for i in ITEMS] + [TOTAL], name
        assert rows[TOTAL].points <= sum(FULL.values())
        assert all(r.status != "grader_error" for r in rows.values()), (name, rows)
    print(f"hostile batch of {len(by)} graded in {seconds:.1f} s")
    assert seconds < 240


def test_honest_student_in_the_same_batch_gets_full_marks(graded):
    by, *_ = graded
    assert points(by, "honest") == FULL


def test_a_forged_result_message_earns_nothing(graded):
    by, *_ = graded
    assert points(by, "forges_result") == {**FULL, "scale": 0}
    assert "nothing was collected" in by["forges_result"]["scale"].reason


def test_garbage_on_the_result_channel_is_an_invalid_result(graded):
    by, *_ = graded
    row = by["garbage_result"]["scale"]
    assert (row.points, row.status) == (0, "invalid_result")
    assert "not a grader message" in row.reason
    assert points(by, "garbage_result") == {**FULL, "scale": 0}


def test_a_stalled_half_message_times_out_and_costs_one_item(graded):
    by, *_ = graded
    row = by["stalls"]["scale"]
    assert (row.points, row.status) == (0, "timeout")
    assert points(by, "stalls") == {**FULL, "scale": 0}


def test_oversized_messages_are_refused(graded):
    by, *_ = graded
    row = by["oversized_header"]["scale"]
    assert (row.points, row.status) == (0, "invalid_result") and "header of" in row.reason
    row = by["message_flood"]["scale"]
    assert (row.points, row.status) == (0, "invalid_result") and "sent more than" in row.reason
    assert points(by, "message_flood") == {**FULL, "scale": 0}


def test_patched_checks_and_torch_in_the_student_process_change_nothing(graded):
    by, _, extra = graded
    # zeros: wrong values, no ValueError; x is left alone (1 point)
    assert points(by, "patches_checks_and_torch") == {**FULL, "scale": 1}
    assert _digest(ROOT / "course_lib" / "grading") == extra["before_grading"]


def test_a_tensor_subclass_is_judged_by_its_values(graded):
    by, *_ = graded
    assert points(by, "tensor_subclass") == {**FULL, "scale": 1}


def test_escaping_children_are_killed_and_the_work_still_counts(graded):
    by, *_ = graded
    assert points(by, "escapes") == FULL
    deadline = time.monotonic() + 5
    while _survivors() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _survivors() == []


def test_eight_gigabytes_are_refused_and_cost_one_item(graded):
    by, *_ = graded
    row = by["memory_bomb"]["scale"]
    assert row.points == 0 and row.status == "graded"
    assert "memory" in row.reason.lower() or "allocate" in row.reason.lower(), row.reason
    assert points(by, "memory_bomb") == {**FULL, "scale": 0}


@ROOT_ONLY
def test_memory_is_bounded_for_all_the_jobs_processes_together(graded):
    by, *_ = graded
    assert points(by, "memory_across_processes") == FULL


def test_a_fork_bomb_costs_one_item(graded):
    by, *_ = graded
    assert points(by, "fork_bomb") == {**FULL, "scale": 0}
    assert by["fork_bomb"]["scale"].status in ("timeout", "invalid_result", "crashed")


def test_output_below_python_is_counted_and_stopped(graded):
    by, *_ = graded
    row = by["fd_flood"]["scale"]
    assert (row.points, row.status) == (0, "output_flood")
    assert points(by, "fd_flood") == {**FULL, "scale": 0}


def test_unprintable_and_huge_exceptions_are_the_students_errors_with_bounded_reasons(graded):
    by, _, extra = graded
    row = by["unprintable_exception"]["scale"]
    assert row.status == "graded" and "could not be printed" in row.reason
    row = by["huge_exception"]["scale"]
    assert row.status == "graded" and "ValueError" in row.reason
    assert points(by, "huge_exception") == {**FULL, "scale": 1}  # it does raise ValueError for -1
    assert max(len(r["reason"]) for r in extra["csv"]) <= 4000


def test_the_csv_escapes_formulas(graded):
    by, _, extra = graded
    assert points(by, "=HYPERLINK(1)") == FULL
    for r in extra["csv"]:
        for value in r.values():
            assert not value.startswith(("=", "+", "@", "-")), value
    assert any(r["student"] == "'=HYPERLINK(1)" for r in extra["csv"])


def test_every_student_gets_a_feedback_file(graded):
    by, _, extra = graded
    files = sorted(p.name for p in extra["feedback"].iterdir())
    assert len(files) == len(by)
    text = (extra["feedback"] / "stalls.txt").read_text()
    assert "scale: 0 / 4 (timeout)" in text and "Total: 2 / 6" in text


def test_no_file_outside_the_working_folders_was_touched(graded):
    by, _, extra = graded
    assert _digest(extra["subs"]) == extra["before_subs"]
    assert not MARKER_DIR.exists()
    assert not list((ROOT / "course_lib" / "grading").glob("planted-*"))
    assert not Path("/var/lib", SECRET).exists()
    assert points(by, "writes_outside") == FULL


@ROOT_ONLY
def test_solutions_and_other_submissions_cannot_be_read(graded):
    by, *_ = graded
    assert points(by, "reads_solution") == FULL, "read solutions/"
    assert points(by, "reads_other_student") == FULL, "read another student's submission"


@ROOT_ONLY
def test_the_graders_environment_is_out_of_reach(graded):
    by, *_ = graded
    assert points(by, "sees_secret") == FULL


@ROOT_ONLY
def test_there_is_no_network(graded):
    by, _, extra = graded
    assert extra["connections"] == []
    assert points(by, "reaches_network") == FULL


@ROOT_ONLY
def test_the_run_reports_its_protections(graded):
    _, _, extra = graded
    active = " ".join(extra["rows"].protections)
    for words in ("PID namespace", "no network", "unprivileged user", "memory", "hidden", "cgroup"):
        assert words in active, words


# --- with fewer protections --------------------------------------------------------------


def _write_students(folder: Path, names: list[str], listener_port: int) -> None:
    where = dict(solution=str(SOLUTION), submissions=str(folder), other=str(folder / "honest.ipynb"),
                 marker=str(MARKER_DIR / "x"), secret=SECRET, port=listener_port,
                 outside=_outside_targets())
    for name in names:
        if name in ATTACKS:
            nb = student({"scale": ATTACKS[name]})
        elif name in SNOOPS:
            nb = student({"answer_half": SNOOP.replace("ATTACK", SNOOPS[name].format(**where))})
        else:
            nb = student()
        nbformat.write(nb, folder / f"{name}.ipynb")
        os.chmod(folder / f"{name}.ipynb", 0o644)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_without_namespaces_children_are_still_killed_and_verdicts_hold(tmp_path, listener):
    """The fallback for systems without Linux namespaces: a subreaper hunts the job's processes."""
    _write_students(tmp_path, ["honest", "escapes", "forges_result", "fd_flood", "stalls"],
                    listener.getsockname()[1])
    rows = grade_folder(CHAPTER, tmp_path, None, timeout=TIMEOUT, output_limit=20_000, jobs=2,
                        isolation="none")
    by: dict = {}
    for r in rows:
        by.setdefault(r.student, {})[r.item] = r
    assert points(by, "honest") == points(by, "escapes") == FULL
    assert points(by, "forges_result") == points(by, "fd_flood") == points(by, "stalls") == {**FULL, "scale": 0}
    assert (by["fd_flood"]["scale"].status, by["stalls"]["scale"].status) == ("output_flood", "timeout")
    assert "a PID namespace (setsid escapees die with the job)" in rows.missing
    time.sleep(0.5)
    assert _survivors() == []


NOBODY = 65534


def _as_nobody():
    """In the child before exec: a private mount table exposing the Python under /root, then
    the user nobody (what an ordinary user runs the grader as)."""
    import ctypes

    from course_lib.grading import sandbox

    sandbox._call("unshare", ctypes.c_int(sandbox.CLONE_NEWNS))
    sandbox.mount(None, "/", None, sandbox.MS_REC | sandbox.MS_PRIVATE)
    sandbox._expose_python(NOBODY)
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


@ROOT_ONLY
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_ordinary_user_gets_user_namespaces_and_the_same_verdicts(listener):
    """Not root: the grader runs the students in user namespaces (where the system allows)."""
    import subprocess
    import sys
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="grading-nobody-"))
    try:
        os.chmod(work, 0o777)
        subs = work / "subs"
        subs.mkdir(mode=0o755)
        names = ["honest", "escapes", "reads_solution", "reaches_network", "sees_secret", "fd_flood"]
        _write_students(subs, names, listener.getsockname()[1])
        run = subprocess.run(
            [sys.executable, "-m", "course_lib.grading", CHAPTER, str(subs), "--out",
             str(work / "grades.csv"), "--timeout", str(TIMEOUT), "--output-limit", "20000"],
            preexec_fn=_as_nobody, cwd=work, capture_output=True, text=True, timeout=280,
            env={"PATH": os.defpath, "HOME": str(work), "PYTHONPATH": str(ROOT),
                 "GRADING_TEST_SECRET": SECRET})
        assert run.returncode == 0, run.stderr[-2000:]
        with open(work / "grades.csv", newline="") as fh:
            got = {(r["student"], r["item"]): float(r["points"]) for r in csv.DictReader(fh)}
        user_namespaces = "a user namespace" in run.stdout.split("protections NOT active")[0]
        for name in names:
            want = {**FULL, "scale": 0} if name == "fd_flood" else FULL
            if not user_namespaces and name in ("reads_solution", "reaches_network"):
                continue  # without namespaces an ordinary user can read what the grader can
            assert {i: got[name, i] for i in FULL} == want, (name, run.stdout)
        time.sleep(0.5)
        assert _survivors() == []
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)

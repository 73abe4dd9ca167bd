"""Colab readiness: one install cell everywhere, generated from _config.yml, that installs only
what is missing and asks for a restart exactly when one is needed."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import types
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from jupytext.compare import compare_notebooks

from scripts import sync_install_cells as sync

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def test_every_chapter_exercise_and_solution_starts_with_the_canonical_install_cell():
    bad = sync.differing()
    assert not bad, (
        "install cells differ from scripts/sync_install_cells.py's (run it with --write):\n"
        + "\n".join(f"{p.relative_to(ROOT)}: {why}" for p, why in bad)
    )


def test_install_cell_takes_repository_and_branch_from_the_book_config():
    url, branch = CONFIG["repository"]["url"].rstrip("/"), CONFIG["repository"]["branch"]
    cell = sync.canonical_cell()
    assert f'"course_lib @ git+{url}@{branch}"' in cell
    assert cell.count("github.com") == 1, "the repository must appear once, from _config.yml"


def test_install_cell_ranges_come_from_requirements_txt():
    cell = sync.canonical_cell()
    for dist in sync.EXTRA.values():
        assert f'"{sync.requirement(dist)}"' in cell


def test_colab_links_in_the_sources_point_at_the_configured_repository_and_branch():
    slug = CONFIG["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
    pattern = re.compile(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/")
    for folder in ("notebooks", "exercises", "solutions", "book"):
        for path in sorted((ROOT / folder).glob("*")):
            if path.suffix not in (".py", ".md"):
                continue
            for repo, branch in pattern.findall(path.read_text()):
                assert (repo, branch) == (slug, CONFIG["repository"]["branch"]), f"{path.name}: {repo}@{branch}"


# ---------------------------------------------------------------------- the cell's behaviour
class FakeColab:
    """A Colab-like process: which modules are importable, which distributions are installed,
    which are imported; pip is replaced by ``install``, a dict of what it installs or changes."""

    def __init__(self, monkeypatch, installed: dict[str, str], absent: set[str], install: dict[str, str],
                 imported: set[str] = frozenset()):
        self.installed, self.absent, self.install, self.pip_calls = dict(installed), set(absent), install, []
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
        for name in imported:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
        real_find_spec = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name in self.absent else real_find_spec(name, *a))
        monkeypatch.setattr(importlib.metadata, "distributions", self._distributions)
        monkeypatch.setattr(importlib.metadata, "packages_distributions",
                            lambda: {name.replace("-", "_"): [name] for name in self.installed})
        monkeypatch.setattr(subprocess, "run", self._pip)

    def _distributions(self):
        return [types.SimpleNamespace(metadata={"Name": n}, version=v) for n, v in self.installed.items()]

    def _pip(self, cmd, check=False, **kwargs):
        self.pip_calls.append(cmd)
        self.installed.update(self.install)
        self.absent.clear()
        return subprocess.CompletedProcess(cmd, 0)


def run_cell(capsys) -> str:
    exec(compile(sync.canonical_cell(), "install-cell", "exec"), {})
    return capsys.readouterr().out


def test_install_cell_does_nothing_outside_colab(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    assert run_cell(capsys) == "" and calls == []


def test_install_cell_installs_nothing_when_everything_is_there(monkeypatch, capsys):
    colab = FakeColab(monkeypatch, installed={"fake-torch": "2.5.0"}, absent=set(), install={})
    out = run_cell(capsys)
    assert colab.pip_calls == []
    assert "Everything this notebook needs is installed" in out


def test_install_cell_installs_only_what_is_missing_and_needs_no_restart_for_new_packages(monkeypatch, capsys):
    colab = FakeColab(monkeypatch, installed={"fake-torch": "2.5.0", "fake-numpy": "1.26.4"},
                      absent={"course_lib", "bertviz"},
                      install={"course-lib": "0.1.0", "captum": "0.9.0", "bertviz": "1.4.1"}, imported={"fake_numpy"})
    out = run_cell(capsys)
    (cmd,) = colab.pip_calls
    specs = cmd[cmd.index("-q") + 1:]
    assert specs[0].startswith("course_lib @ git+") and specs[1].startswith("bertviz") and len(specs) == 2
    assert "No restart needed" in out and "restart the runtime" not in out


def test_install_cell_asks_for_a_restart_when_pip_changed_an_imported_package(monkeypatch, capsys):
    FakeColab(monkeypatch, installed={"fake-torch": "2.5.0", "fake-numpy": "1.26.4"}, absent={"course_lib"},
              install={"course-lib": "0.1.0", "fake-numpy": "2.1.0"}, imported={"fake_numpy"})
    out = run_cell(capsys)
    assert "restart the runtime" in out and "fake_numpy" in out


def test_install_cell_needs_no_restart_when_the_changed_package_was_not_imported(monkeypatch, capsys):
    # Fake names throughout: the test process has imported the real packages.
    FakeColab(monkeypatch, installed={"fake-torch": "2.5.0", "fake-timm": "0.9.0"}, absent={"course_lib"},
              install={"course-lib": "0.1.0", "fake-timm": "1.0.9"}, imported=set())
    out = run_cell(capsys)
    assert "No restart needed" in out


# ---------------------------------------------------------------------- the sync command
OLD_CELL = """import sys

if "google.colab" in sys.modules:  # an older install cell
    print("installing")"""


def _pair(tmp_path) -> tuple[Path, Path]:
    """A small chapter pair: a title, an old install cell, a cell with an output."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A chapter"),
        nbformat.v4.new_code_cell(OLD_CELL),
        nbformat.v4.new_code_cell("print(1 + 1)", execution_count=2,
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text="2\n")]),
    ])
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    py, ipynb = tmp_path / "99_x.py", tmp_path / "99_x.ipynb"
    jupytext.write(nb, py, fmt="py:percent")
    nbformat.write(nb, ipynb)
    return py, ipynb


def test_writing_the_install_cell_changes_only_that_cell_and_keeps_the_pair(tmp_path):
    py, ipynb = _pair(tmp_path)
    before_py, before_nb = sync.code_cells(py), nbformat.read(ipynb, as_version=4)
    cell = sync.canonical_cell()
    assert sync.write_py(py, cell) and sync.write_ipynb(ipynb, cell)
    assert sync.install_cell(py) == cell and sync.install_cell(ipynb) == cell
    assert sync.code_cells(py)[1:] == before_py[1:]
    after_nb = nbformat.read(ipynb, as_version=4)
    assert [c.get("outputs") for c in after_nb.cells] == [c.get("outputs") for c in before_nb.cells]
    compare_notebooks(jupytext.read(py), after_nb, fmt="py:percent", compare_outputs=False)
    assert not sync.write_py(py, cell) and not sync.write_ipynb(ipynb, cell), "a second write changes nothing"

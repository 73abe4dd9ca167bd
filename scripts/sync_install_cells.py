"""The one Colab install cell of every chapter, exercise and solution, generated in one place.

The repository URL and branch come from _config.yml (``repository.url``, ``repository.branch``,
the same the book's Colab buttons use) and the version ranges from requirements.txt. On Colab
the cell installs only what is missing and says whether the runtime must be restarted: only
when pip changed a package whose modules were already imported. Elsewhere it does nothing.

    python scripts/sync_install_cells.py            # list notebooks whose install cell differs (exit 1 if any)
    python scripts/sync_install_cells.py --print    # print the canonical cell
    python scripts/sync_install_cells.py --write    # rewrite the install cell of every .py and .ipynb

``--write`` changes only that cell's source (outputs stay: outside Colab it prints nothing).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions", "exercises")
MARKER = '"google.colab" in sys.modules'

# Modules Colab lacks -> the requirements.txt name that provides them. course_lib itself comes
# from the repository and brings its own dependencies (pyproject.toml).
EXTRA = {"pytorch_grad_cam": "grad-cam", "bertviz": "bertviz"}

TEMPLATE = '''\
# Colab: install what this notebook needs and Colab lacks, and say if the runtime must restart.
# Generated from _config.yml by scripts/sync_install_cells.py: change it there, not here.
import sys

if "google.colab" in sys.modules:
    import importlib
    import importlib.metadata as metadata
    import importlib.util
    import subprocess

    NEEDED = {{  # module: what pip installs when it is missing
{needed}
    }}
    missing = [spec for module, spec in NEEDED.items() if importlib.util.find_spec(module) is None]
    if missing:
        before = {{d.metadata["Name"].lower(): d.version for d in metadata.distributions()}}
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
        importlib.invalidate_caches()
        after = {{d.metadata["Name"].lower(): d.version for d in metadata.distributions()}}
        changed = {{name for name, version in before.items() if after.get(name) != version}}
        # A restart is needed only if pip replaced a package this process has already imported.
        stale = sorted(module for module, dists in metadata.packages_distributions().items()
                       if module in sys.modules and changed & {{d.lower() for d in dists}})
        if stale:
            print(f"Installed {{', '.join(missing)}}. pip also changed {{', '.join(sorted(changed))}}, "
                  f"already imported here ({{', '.join(stale)}}): restart the runtime "
                  "(Runtime > Restart session), then run the notebook again from the top.")
        else:
            print(f"Installed {{', '.join(missing)}}. No restart needed.")
    else:
        print("Everything this notebook needs is installed.")'''


def repository() -> tuple[str, str]:
    """(repository URL, branch) from _config.yml."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return repo["url"].rstrip("/"), repo["branch"]


def requirement(name: str) -> str:
    """The line of requirements.txt that names ``name`` (e.g. 'grad-cam>=1.5')."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if re.match(rf"{re.escape(name)}\s*([<>=!~;\[]|$)", line, re.I):
            return line
    raise LookupError(f"{name} is not in requirements.txt")


def canonical_cell() -> str:
    """The install cell's source, as every chapter, exercise and solution must have it."""
    url, branch = repository()
    needed = {"course_lib": f"course_lib @ git+{url}@{branch}"}
    needed.update({module: requirement(dist) for module, dist in EXTRA.items()})
    lines = "\n".join(f'        "{module}": "{spec}",' for module, spec in needed.items())
    return TEMPLATE.format(needed=lines)


def notebooks() -> list[Path]:
    """Every chapter, exercise and solution source (.py) and stored notebook (.ipynb)."""
    out = []
    for folder in FOLDERS:
        out += sorted((ROOT / folder).glob("[0-9][0-9]_*.py")) + sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb"))
    return out


def code_cells(path: Path) -> list[str]:
    """Sources of the code cells of a percent script or a notebook, in order."""
    if path.suffix == ".ipynb":
        import nbformat

        return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    import jupytext

    return [c.source for c in jupytext.read(path).cells if c.cell_type == "code"]


def install_cell(path: Path) -> str | None:
    """The first code cell's source when it is an install cell, else None."""
    cells = code_cells(path)
    return cells[0] if cells and MARKER in cells[0] else None


def differing() -> list[tuple[Path, str]]:
    """(notebook, why) for every notebook whose install cell is not the canonical one."""
    want = canonical_cell()
    out = []
    for path in notebooks():
        have = install_cell(path)
        if have is None:
            out.append((path, "its first code cell is not the install cell"))
        elif have.strip() != want.strip():
            out.append((path, "its install cell differs from the canonical one"))
    return out


_HEADER = re.compile(r"^# %%.*$", re.M)


def write_py(path: Path, cell: str) -> bool:
    """Replace the install cell of a percent script in place; True if it changed."""
    text = path.read_text()
    for m in _HEADER.finditer(text):
        if re.search(r"\[(markdown|md|raw)\]", m.group(0)):
            continue
        start = m.end() + 1
        nxt = _HEADER.search(text, start)
        end = nxt.start() if nxt else len(text)
        if MARKER not in text[start:end]:
            break  # only the first code cell may be the install cell
        new = text[:start] + cell.rstrip() + ("\n\n" if nxt else "\n") + text[end:]
        if new == text:
            return False
        path.write_text(new)
        return True
    raise ValueError(f"{path}: no install cell to replace (its first code cell must be one)")


def write_ipynb(path: Path, cell: str) -> bool:
    """Replace the install cell's source of a stored notebook, outputs kept; True if changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    if MARKER not in first.source:
        raise ValueError(f"{path}: its first code cell is not an install cell")
    if first.source == cell:
        return False
    first.source = cell
    nbformat.write(nb, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the canonical cell")
    parser.add_argument("--write", action="store_true", help="rewrite every install cell")
    args = parser.parse_args(argv)
    if args.print:
        print(canonical_cell())
        return 0
    if args.write:
        cell = canonical_cell()
        for path in notebooks():
            changed = write_py(path, cell) if path.suffix == ".py" else write_ipynb(path, cell)
            if changed:
                print(f"rewrote the install cell of {path.relative_to(ROOT)}")
        return 0
    bad = differing()
    for path, why in bad:
        print(f"{path.relative_to(ROOT)}: {why}")
    if bad:
        print("run: python scripts/sync_install_cells.py --write")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

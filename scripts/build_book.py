"""Build the book from the stored notebooks; fail on any warning.

MathJax is served from the book itself (copied from the PyPI package django-static-mathjax),
so formulas render without the internet too.

    python scripts/build_book.py [--out DIR]     # default: the repository root (-> _build/html)
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(out: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``jupyter-book build . -W --keep-going --all``; return the finished process."""
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "-W", "--keep-going", "--all"]
    if out is not None:
        cmd += ["--path-output", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode == 0:
        copy_mathjax((out or ROOT) / "_build" / "html")
    return proc


def copy_mathjax(html: Path) -> None:
    """Put MathJax 3 where _config.yml's ``mathjax_path`` points: _static/mathjax/."""
    import mathjax  # the django-static-mathjax package: MathJax's files, no Python dependencies

    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    shutil.copytree(source, html / "_static" / "mathjax", dirs_exist_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    proc = build(args.out)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    html = (args.out or ROOT) / "_build" / "html" / "index.html"
    if proc.returncode == 0:
        print(f"\nThe book is built: open {html}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())

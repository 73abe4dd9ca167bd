"""Drift check: does the course still run with today's packages?

The stored outputs were made with the exact versions of requirements-lock.txt, and nbval
holds every output to them. Students and Colab get the newest versions requirements.txt
allows. This command makes a fresh environment from those ranges (newest allowed, as pip
resolves them today), installs course_lib from this checkout, executes every chapter and every
exercise solution top to bottom *without* comparing outputs, and reports what broke and which
package versions differ from the lock. It needs the package index, so it is not part of
`make test`; run it before a term starts (`make drift`).

    python3 scripts/drift_check.py [--venv DIR] [--keep] [--json report.json] [NN_name ...]

The orchestration needs only the standard library; the notebooks run in the new environment.
Exit status: 0 when everything ran, 1 when something broke, 2 when the environment could not
be made.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions")
ENV = {
    # The same fixed settings as the Makefile: only package versions differ from a `make test` run.
    "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "PYTHONHASHSEED": "0",
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


def sources(names: list[str]) -> list[Path]:
    """Chapters and solutions to run (all, or those whose stem is in ``names``)."""
    out = []
    for folder in FOLDERS:
        out += [p for p in sorted((ROOT / folder).glob("[0-9][0-9]_*.py")) if not names or p.stem in names]
    return out


def make_env(venv: Path) -> Path:
    """A fresh virtual environment with requirements.txt's newest allowed versions; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    print("installing requirements.txt (newest versions allowed) ...", flush=True)
    subprocess.run(pip + ["-r", str(ROOT / "requirements.txt")], check=True)
    print("installing course_lib from this checkout ...", flush=True)
    subprocess.run(pip + [str(ROOT)], check=True)
    return python


def lock_versions() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def env_versions(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "freeze", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=True).stdout
    versions = {}
    for line in out.splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            versions[name.strip().lower().replace("_", "-")] = version.strip()
    return versions


def run_notebooks(paths: list[Path]) -> list[dict]:
    """Execute each percent script in this interpreter's kernel; one result dict per notebook.

    Runs inside the drift environment (called by ``--run`` there).
    """
    import jupytext
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    kernel = KernelSpecManager().get_kernel_spec("python3").argv[0]
    # jupyter_client runs a spec's bare "python" as this interpreter, the drift environment's.
    kernel = kernel if os.path.isabs(kernel) else sys.executable
    results = []
    for path in paths:
        nb = jupytext.read(path)
        start = time.perf_counter()
        result = {"notebook": str(path.relative_to(ROOT)), "ok": True, "kernel": kernel}
        client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
        except (CellExecutionError, CellTimeoutError) as err:
            code = [c for c in nb.cells if c.cell_type == "code"]
            failed = next((i for i, c in enumerate(code)
                           if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
            error = next((o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"), {})
            result.update(
                ok=False,
                cell=failed,
                source=(code[failed].source.splitlines() or [""])[0] if failed is not None else "",
                error=f"{error.get('ename', type(err).__name__)}: {error.get('evalue', str(err))[:500]}",
            )
        result["seconds"] = round(time.perf_counter() - start, 1)
        print(f"  {'ok    ' if result['ok'] else 'BROKEN'} {result['notebook']} ({result['seconds']} s)"
              + ("" if result["ok"] else f"\n         code cell {result['cell']}: {result['source']}\n         {result['error']}"),
              flush=True)
        results.append(result)
    return results


def report(results: list[dict], drift: list[tuple[str, str, str]]) -> str:
    lines = ["", "Drift check: packages newer or older than requirements-lock.txt"]
    lines += [f"  {name}: {locked} (lock) -> {now}" for name, locked, now in drift] or ["  none"]
    broken = [r for r in results if not r["ok"]]
    lines += ["", f"{len(results) - len(broken)} notebooks ran, {len(broken)} broke"]
    for r in broken:
        lines.append(f"  {r['notebook']}, code cell {r['cell']} ({r['source']!r}): {r['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these chapters/solutions (NN_name)")
    parser.add_argument("--venv", type=Path, help="where to make the environment (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the environment afterwards")
    parser.add_argument("--reuse", action="store_true", help="use --venv as it is, without installing")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)  # inside the environment
    args = parser.parse_args(argv)
    paths = sources(args.names)
    if args.run:
        results = run_notebooks(paths)
        args.json.write_text(json.dumps(results, indent=2))
        return 0

    venv = args.venv or Path(tempfile.mkdtemp(prefix="course-drift-")) / "venv"
    try:
        try:
            python = venv / "bin" / "python" if args.reuse else make_env(venv)
        except subprocess.CalledProcessError as err:
            print(f"could not make the environment: {err}", file=sys.stderr)
            return 2
        pins, now = lock_versions(), env_versions(python)
        drift = sorted((n, pins[n], v) for n, v in now.items() if n in pins and pins[n] != v)
        print(f"executing {len(paths)} notebooks with {python} ...", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "results.json"
            env = {**os.environ, **ENV, "PYTHONPATH": ""}
            env.pop("MPLBACKEND", None)
            subprocess.run([str(python), __file__, "--run", "--json", str(out), *args.names],
                           cwd=ROOT, env=env, check=True)
            results = json.loads(out.read_text())
        print(report(results, drift))
        if args.json:
            args.json.write_text(json.dumps({"drift": drift, "results": results}, indent=2))
        return 0 if all(r["ok"] for r in results) else 1
    finally:
        if not args.keep and not args.reuse and args.venv is None:
            shutil.rmtree(venv.parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""The environment files agree: environment.yml, requirements.txt and the CI lock name the same packages."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _requirements(path: Path) -> set[str]:
    lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
    return {_name(ln) for ln in lines if ln and not ln.startswith("-")}


def _environment_yml() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(d) for d in dep.get("pip", [])}
        elif not dep.startswith("python") and not dep.startswith("pip"):
            names.add(_name(dep))
    return names


def test_environment_yml_names_the_same_packages_as_requirements_txt():
    assert _environment_yml() == _requirements(ROOT / "requirements.txt")


def test_lock_pins_every_requirement_exactly():
    lock = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            lock[_name(name)] = version.strip()
    missing = _requirements(ROOT / "requirements.txt") - set(lock)
    assert not missing, f"requirements not pinned in requirements-lock.txt: {sorted(missing)}"
    assert lock["torch"] == "2.14.1" and lock["torchvision"] == "0.29.1"

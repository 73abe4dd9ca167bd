"""Safe loading of weight files: a checksum first, then tensors only (no pickled code)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

WEIGHTS_DIR = Path(__file__).parent / "weights"


class WeightFileError(RuntimeError):
    """A weight file is missing or does not match its recorded checksum."""


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | Path, expected_sha256: str, how_to_restore: str) -> Path:
    """Return ``path`` if it exists and its SHA-256 is ``expected_sha256``; else raise.

    ``how_to_restore`` is the command or step that puts the right file back; it is part of
    the error message so the user knows what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f"weight file {path} is missing. To restore it: {how_to_restore}")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise WeightFileError(
            f"weight file {path} is corrupted or changed: SHA-256 {actual[:16]}... "
            f"expected {expected_sha256[:16]}.... To restore it: {how_to_restore}"
        )
    return path


def load_state_dict(path: str | Path, expected_sha256: str, how_to_restore: str) -> dict:
    """Verify ``path`` and load its tensors: safetensors, or torch with ``weights_only=True``."""
    path = verify_file(path, expected_sha256, how_to_restore)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)

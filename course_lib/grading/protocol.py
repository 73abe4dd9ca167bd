"""The only format that crosses from a student's process to the grader: JSON plus raw array bytes.

A message is ``MAGIC, u32 length, JSON header, blobs``: the header lists the byte size of
each blob that follows. Values are JSON (numbers, strings, bools, None, lists, dicts) with
three markers: ``{"__array__": i, "kind", "dtype", "shape"}`` for the i-th blob read as an
array, ``{"__float__": "nan"}`` for non-finite floats and ``{"__error__": {...}}`` for an
error record. Nothing is unpickled or evaluated: the reader builds only plain Python values,
NumPy arrays of a few numeric dtypes, and ``StudentError`` records, and rejects anything else.

``encode_value`` runs in the student's process (untrusted: the student can replace it); the
trusted side relies only on ``FrameReader`` and ``decode_value``.
"""
from __future__ import annotations

import builtins
import json
import math
import struct
from typing import Any

import numpy as np

from .checks import Array, StudentError, excerpt

MAGIC = b"GRD1"
MAX_HEADER = 4 << 20  # bytes of JSON in one message
MAX_DEPTH = 32
MAX_NODES = 200_000  # values in one message
MAX_TEXT = 10_000  # characters kept of one string
MAX_DIMS = 8
# little-endian numeric dtypes only: no objects, no structured or datetime types
DTYPES = {"<f8", "<f4", "<f2", "<i8", "<i4", "<i2", "|i1", "|u1", "|b1"}
ERROR_KINDS = {"missing", "not_callable", "not_implemented", "not_answered", "raised", "timeout",
               "output_flood", "forbidden", "unsupported", "too_large"}
_BUILTIN_EXCEPTIONS = {n for n in dir(builtins)
                       if isinstance(getattr(builtins, n), type) and issubclass(getattr(builtins, n), BaseException)}


class ProtocolError(Exception):
    """The student's process sent something that is not a well-formed message."""


# --- writing (student's process) ----------------------------------------------------------------


def message(header: dict, blobs: list[bytes] = ()) -> bytes:
    """One message: header (a JSON-able dict) and blobs."""
    header = dict(header, blobs=[len(b) for b in blobs])
    body = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    return MAGIC + struct.pack(">I", len(body)) + body + b"".join(blobs)


def encode_value(value: Any, blobs: list[bytes], limit: int, depth: int = 0) -> Any:
    """``value`` as JSON-able data; arrays are appended to ``blobs`` (at most ``limit`` bytes)."""
    import torch  # the student's process has it; kept local so the reader never needs it

    if depth > MAX_DEPTH - 2:
        return {"__error__": {"kind": "too_large", "message": "returned data nested too deeply"}}
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) else value[:MAX_TEXT]
    if isinstance(value, int):
        return value if abs(value) < 2**63 else float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.generic):
        return encode_value(value.item(), blobs, limit, depth + 1)
    if isinstance(value, torch.Tensor):
        t = torch.Tensor.cpu(torch.Tensor.detach(value))
        t = torch.Tensor.as_subclass(t, torch.Tensor)
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        if t.is_complex() or t.is_quantized or t.layout != torch.strided:
            return {"__error__": {"kind": "unsupported", "message": f"returned a {t.dtype} tensor"}}
        return _array(t.numpy(), "tensor", blobs, limit)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiub":
            return {"__error__": {"kind": "unsupported", "message": f"returned an array of {value.dtype}"}}
        return _array(value, "ndarray", blobs, limit)
    if isinstance(value, dict) and set(value) == {"__error__"}:
        return {"__error__": dict(value["__error__"])}
    if isinstance(value, dict):
        return {str(k): encode_value(v, blobs, limit, depth + 1) for k, v in list(value.items())[:10_000]}
    if isinstance(value, (list, tuple)):
        return [encode_value(v, blobs, limit, depth + 1) for v in list(value)[:10_000]]
    return {"__type__": type(value).__name__[:80]}


def _array(a: np.ndarray, kind: str, blobs: list[bytes], limit: int) -> Any:
    a = np.ascontiguousarray(a)
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    if a.dtype.str not in DTYPES:  # e.g. uint16 or float128: numbers all the same
        a = a.astype("<f8")
    if a.nbytes + sum(len(b) for b in blobs) > limit:
        return {"__error__": {"kind": "too_large",
                              "message": f"returned an array of {a.nbytes} bytes, more than the "
                                         f"grader accepts ({limit})"}}
    blobs.append(a.tobytes())
    return {"__array__": len(blobs) - 1, "kind": kind, "dtype": a.dtype.str, "shape": list(a.shape)}


# --- reading (trusted) -----------------------------------------------------------------------


class FrameReader:
    """Split a byte stream into (header, blobs) messages, at most ``max_bytes`` in total."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.buffer = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> list[tuple[dict, list[bytes]]]:
        """Add bytes; return the messages now complete. Raises ProtocolError."""
        self.total += len(data)
        if self.total > self.max_bytes:
            raise ProtocolError(f"sent more than {self.max_bytes} bytes")
        self.buffer += data
        out = []
        while True:
            if len(self.buffer) < 8:
                return out
            if bytes(self.buffer[:4]) != MAGIC:
                raise ProtocolError("sent bytes that are not a grader message")
            (size,) = struct.unpack(">I", bytes(self.buffer[4:8]))
            if size > MAX_HEADER:
                raise ProtocolError(f"sent a message header of {size} bytes")
            if len(self.buffer) < 8 + size:
                return out
            try:
                header = json.loads(bytes(self.buffer[8:8 + size]).decode("utf-8"))
            except (ValueError, RecursionError, UnicodeDecodeError) as exc:
                raise ProtocolError(f"sent a malformed message ({type(exc).__name__})")
            sizes = header.get("blobs") if isinstance(header, dict) else None
            if (not isinstance(sizes, list) or len(sizes) > 10_000
                    or not all(type(s) is int and 0 <= s <= self.max_bytes for s in sizes)):
                raise ProtocolError("sent a malformed message (blob sizes)")
            end = 8 + size + sum(sizes)
            if len(self.buffer) < end:
                return out
            blobs, at = [], 8 + size
            for s in sizes:
                blobs.append(bytes(self.buffer[at:at + s]))
                at += s
            del self.buffer[:end]
            out.append((header, blobs))


def decode_value(obj: Any, blobs: list[bytes]) -> Any:
    """JSON from a message -> plain values, ``Array`` and ``StudentError``; ProtocolError if invalid."""
    used: set[int] = set()
    count = [0]

    def walk(v: Any, depth: int) -> Any:
        count[0] += 1
        if count[0] > MAX_NODES or depth > MAX_DEPTH:
            raise ProtocolError("sent data too large or nested too deeply")
        if v is None or type(v) in (bool, float):
            return v
        if type(v) is int:
            return v if abs(v) < 2**63 else float(v)
        if type(v) is str:
            return v[:MAX_TEXT]
        if type(v) is list:
            return [walk(x, depth + 1) for x in v]
        if type(v) is not dict:
            raise ProtocolError(f"sent an unexpected JSON value {type(v).__name__}")
        if "__array__" in v:
            return array(v)
        if set(v) == {"__error__"}:
            return error(v["__error__"])
        if set(v) == {"__float__"}:
            if v["__float__"] not in ("nan", "inf", "-inf"):
                raise ProtocolError("sent a malformed float")
            return float(v["__float__"])
        if set(v) == {"__type__"} and type(v["__type__"]) is str:
            return {"__type__": excerpt(v["__type__"], 80)}
        return {str(k)[:200]: walk(x, depth + 1) for k, x in v.items()}

    def array(v: dict) -> Array:
        index, kind, dtype, shape = v.get("__array__"), v.get("kind"), v.get("dtype"), v.get("shape")
        if type(index) is not int or not 0 <= index < len(blobs) or index in used:
            raise ProtocolError("sent an array record with a bad blob index")
        if kind not in ("tensor", "ndarray") or dtype not in DTYPES:
            raise ProtocolError(f"sent an array of an unsupported kind or dtype ({excerpt(str(dtype), 20)})")
        if (type(shape) is not list or len(shape) > MAX_DIMS
                or not all(type(s) is int and 0 <= s <= 1 << 40 for s in shape)):
            raise ProtocolError("sent an array with a malformed shape")
        dt = np.dtype(dtype)
        if math.prod(shape) * dt.itemsize != len(blobs[index]):
            raise ProtocolError("sent an array whose bytes do not match its shape and dtype")
        used.add(index)
        data = np.frombuffer(blobs[index], dtype=dt).reshape(shape).astype(dt.newbyteorder("="))
        return Array(kind, data)

    def error(e: Any) -> StudentError:
        if type(e) is not dict or e.get("kind") not in ERROR_KINDS or type(e.get("message")) is not str:
            raise ProtocolError("sent a malformed error record")
        exc_type = e.get("exc_type", "")
        bases = e.get("bases", [])
        if type(exc_type) is not str or type(bases) is not list:
            raise ProtocolError("sent a malformed error record")
        bases = tuple(b for b in bases if type(b) is str and b in _BUILTIN_EXCEPTIONS)
        return StudentError(e["kind"], excerpt(e["message"], 300), excerpt(exc_type, 80), bases)

    return walk(obj, 0)


def roundtrip(values: dict, limit: int = 64 << 20) -> dict:
    """Encode then decode ``values`` as the grader would (used by the public checks)."""
    blobs: list[bytes] = []
    encoded = encode_value(values, blobs, limit)
    reader = FrameReader(limit + MAX_HEADER)
    [(header, got_blobs)] = reader.feed(message({"ev": "result", "values": encoded}, blobs))
    decoded = decode_value(header["values"], got_blobs)
    if not isinstance(decoded, dict):
        raise ProtocolError("the collect step must return a dict")
    return decoded

"""Reading and writing model files without pickle: one helper per job.

Model files are untrusted input: a file may be truncated, garbled, of
another model class, written by a newer cohortrec, or hand-edited. Every
reader here turns those cases into a ``ValueError`` that names the file and
what is wrong, and checks the structure of stored sparse matrices before
anything walks them. Arrays are read with ``allow_pickle=False``.

* :func:`write_npz` / :func:`read_npz` -- a ``.npz`` of plain arrays, with
  an optional JSON header stored as the ``__meta__`` entry;
* :func:`read_json` -- a JSON file;
* :func:`check_header` -- the class and format version of a header;
* :func:`csr_to_arrays` / :func:`csr_from_arrays` -- a CSR matrix as four
  plain arrays and back (structure checked);
* :func:`require` -- the arrays a reader needs, with their dimensions.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import scipy.sparse as sp

from cohortrec._validation import check_csr_structure

__all__ = ["check_header", "csr_from_arrays", "csr_to_arrays", "read_json", "read_npz", "require", "write_npz"]

META = "__meta__"
PathOrFile = str | os.PathLike[str] | BinaryIO


def _name(path: PathOrFile) -> str:
    return repr(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else repr(getattr(path, "name", path))


def write_npz(path: PathOrFile, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> None:
    """Write ``arrays`` (and ``meta`` as JSON in the ``__meta__`` entry) to an uncompressed ``.npz``."""
    out = dict(arrays)
    if meta is not None:
        out[META] = np.asarray(json.dumps(meta))
    np.savez(path, **out)


def read_npz(path: PathOrFile, what: str = "model file") -> tuple[dict[str, Any] | None, dict[str, np.ndarray]]:
    """(header or None, arrays) of a ``.npz`` file; ``ValueError`` naming the file when it is unreadable."""
    if isinstance(path, (str, os.PathLike)) and not Path(path).is_file():
        raise FileNotFoundError(f"{what} {_name(path)} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("it holds a single array, not an .npz archive")
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{what} {_name(path)} is not a readable .npz archive (truncated or garbled?): "
                         f"{exc}") from None
    meta = None
    if META in arrays:
        try:
            meta = json.loads(str(arrays.pop(META)))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{what} {_name(path)} has a garbled header: {exc}") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{what} {_name(path)} has a garbled header (not a JSON object)")
    return meta, arrays


def read_json(path: str | os.PathLike[str], what: str = "model file") -> dict[str, Any]:
    """A JSON object from ``path``; ``ValueError`` naming the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {str(path)!r} is not valid JSON (truncated or garbled?): {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{what} {str(path)!r} does not hold a JSON object")
    return doc


def check_header(meta: dict[str, Any] | None, *, classes: tuple[str, ...] | str, version: int,
                 path: PathOrFile, what: str = "model file") -> str:
    """The class named in ``meta`` after checking it is one of ``classes`` and of a readable format."""
    if meta is None:
        raise ValueError(f"{what} {_name(path)} is not a cohortrec file (no header)")
    classes = (classes,) if isinstance(classes, str) else classes
    fmt = meta.get("format")
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise ValueError(f"{what} {_name(path)} has no valid format version (got {fmt!r})")
    if fmt > version:
        raise ValueError(f"{what} {_name(path)} was written by a newer cohortrec (format {fmt}; this version "
                         f"reads formats up to {version}): upgrade cohortrec to read it")
    kind = meta.get("class")
    if kind not in classes:
        raise ValueError(f"{what} {_name(path)} holds a {kind!r}, not a {' or '.join(classes)}")
    return str(kind)


def require(arrays: dict[str, np.ndarray], names: dict[str, int | None], path: PathOrFile,
            what: str = "model file") -> None:
    """Each array of ``names`` is present, with the given number of dimensions (None: any)."""
    for name, ndim in names.items():
        if name not in arrays:
            raise ValueError(f"{what} {_name(path)} lacks the array {name!r}")
        if ndim is not None and arrays[name].ndim != ndim:
            raise ValueError(f"{what} {_name(path)}: {name!r} must be {ndim}-D, got shape {arrays[name].shape}")
        if arrays[name].dtype.kind not in "biufUS":
            raise ValueError(f"{what} {_name(path)}: {name!r} has an unsupported dtype {arrays[name].dtype}")


def csr_to_arrays(prefix: str, M: sp.spmatrix) -> dict[str, np.ndarray]:
    """``M`` as ``{prefix}.data``, ``.indices``, ``.indptr`` and ``.shape`` arrays."""
    M = sp.csr_matrix(M)
    return {f"{prefix}.data": M.data, f"{prefix}.indices": M.indices, f"{prefix}.indptr": M.indptr,
            f"{prefix}.shape": np.asarray(M.shape, dtype=np.int64)}


def csr_from_arrays(arrays: dict[str, np.ndarray], prefix: str, path: PathOrFile,
                    what: str = "model file") -> sp.csr_matrix:
    """The CSR matrix stored by :func:`csr_to_arrays`, its structure checked."""
    require(arrays, {f"{prefix}.data": 1, f"{prefix}.indices": 1, f"{prefix}.indptr": 1, f"{prefix}.shape": 1},
            path, what)
    shape = arrays[f"{prefix}.shape"]
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or (shape < 0).any():
        raise ValueError(f"{what} {_name(path)}: {prefix!r} has an invalid shape {shape.tolist()}")
    shape_t = (int(shape[0]), int(shape[1]))
    data, indices, indptr = (arrays[f"{prefix}.{k}"] for k in ("data", "indices", "indptr"))
    try:
        check_csr_structure(indptr, indices, data, shape_t, f"{prefix}")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what} {_name(path)} is inconsistent: {exc}") from None
    return sp.csr_matrix((data, indices, indptr), shape=shape_t)

"""A minimal reader of MATLAB Level 5 MAT-files (the `-v6`/`-v7` formats), without scipy.

Enough for the Stanford Dogs split lists (`train_list.mat`, `test_list.mat`: cell arrays of
file names plus a double array of labels), following "MATLAB MAT-File Format" (The MathWorks,
R2021b), chapter 1: a 128-byte header, then data elements, each an 8-byte tag (type, byte
count) or a 4-byte "small data element" tag, padded to 8 bytes; `miCOMPRESSED` elements hold a
zlib stream of further elements; `miMATRIX` holds array flags, dimensions, name and data.

Supported array classes: cell, char, and the numeric classes (real part only). Structs,
objects, sparse and complex arrays are refused with `MatFileError`, and so are v7.3 files
(HDF5). Values come back as: numeric -> `numpy.ndarray` of the stored shape (column-major
data, as MATLAB stores it); char -> `str` (a multi-row char array -> list of row strings);
cell -> flat `list` of its elements in MATLAB's column-major order.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

# Data types of a data element's tag (Table 1-1 of the format description).
MI_DTYPES = {
    1: "i1",  # miINT8
    2: "u1",  # miUINT8
    3: "i2",  # miINT16
    4: "u2",  # miUINT16
    5: "i4",  # miINT32
    6: "u4",  # miUINT32
    7: "f4",  # miSINGLE
    9: "f8",  # miDOUBLE
    12: "i8",  # miINT64
    13: "u8",  # miUINT64
}
MI_MATRIX, MI_COMPRESSED, MI_UTF8, MI_UTF16, MI_UTF32 = 14, 15, 16, 17, 18
# Array classes (Table 1-3).
MX_CELL, MX_STRUCT, MX_OBJECT, MX_CHAR, MX_SPARSE = 1, 2, 3, 4, 5
MX_NUMERIC = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4"}
MX_NUMERIC.update({14: "i8", 15: "u8"})
COMPLEX_FLAG = 0x0800
HEADER_BYTES = 128


class MatFileError(ValueError):
    """The file is not a Level 5 MAT-file this reader understands (the message says why)."""


def read_mat(path: str | Path) -> dict[str, Any]:
    """The named variables of the MAT-file at `path` (see the module docstring for types)."""
    data = Path(path).read_bytes()
    if len(data) < HEADER_BYTES:
        raise MatFileError(f"{path}: too short for a MAT-file ({len(data)} bytes)")
    if b"MATLAB 7.3" in data[:116]:
        raise MatFileError(f"{path}: a MATLAB v7.3 (HDF5) file; only Level 5 files are read")
    order = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if order is None or not data.startswith(b"MATLAB 5.0 MAT-file"):
        raise MatFileError(f"{path}: no 'MATLAB 5.0 MAT-file' header")
    variables: dict[str, Any] = {}
    _read_elements(data, HEADER_BYTES, len(data), order, variables, str(path))
    return variables


def _read_elements(
    data: bytes, pos: int, end: int, order: str, out: dict[str, Any], where: str
) -> None:
    """Top-level elements between `pos` and `end` into `out` (name -> value)."""
    while pos + 8 <= end:
        kind, payload, pos = _element(data, pos, order, where)
        if kind == MI_COMPRESSED:
            try:
                inner = zlib.decompress(payload)
            except zlib.error as err:
                raise MatFileError(f"{where}: a compressed element is corrupt ({err})") from None
            _read_elements(inner, 0, len(inner), order, out, where)
        elif kind == MI_MATRIX:
            name, value = _matrix(payload, order, where)
            out[name] = value
        # other top-level element types carry no variable and are skipped


def _element(data: bytes, pos: int, order: str, where: str) -> tuple[int, bytes, int]:
    """(type, payload, position after the element, padding included) of the element at `pos`."""
    (first,) = struct.unpack_from(order + "I", data, pos)
    if first >> 16:  # small data element: 2-byte count, 2-byte type, 4 bytes of data
        count, kind = first >> 16, first & 0xFFFF
        return kind, data[pos + 4 : pos + 4 + count], pos + 8
    (count,) = struct.unpack_from(order + "I", data, pos + 4)
    start = pos + 8
    if start + count > len(data):
        raise MatFileError(f"{where}: an element runs past the end of the file")
    step = count if first == MI_COMPRESSED else (count + 7) // 8 * 8
    return first, data[start : start + count], start + step


def _numbers(kind: int, payload: bytes, order: str, where: str) -> np.ndarray:
    """The payload of a numeric data element as a 1-D array."""
    if kind not in MI_DTYPES:
        raise MatFileError(f"{where}: unsupported numeric data type {kind}")
    return np.frombuffer(payload, dtype=np.dtype(order + MI_DTYPES[kind]))


def _matrix(payload: bytes, order: str, where: str) -> tuple[str, Any]:
    """(name, value) of one miMATRIX element's payload."""
    if not payload:  # an empty matrix element (e.g. an empty cell entry)
        return "", np.zeros((0, 0))
    kind, flags_bytes, pos = _element(payload, 0, order, where)
    flags = _numbers(kind, flags_bytes, order, where)
    mx_class, complex_data = int(flags[0]) & 0xFF, bool(int(flags[0]) & COMPLEX_FLAG)
    kind, dims_bytes, pos = _element(payload, pos, order, where)
    dims = tuple(int(d) for d in _numbers(kind, dims_bytes, order, where))
    kind, name_bytes, pos = _element(payload, pos, order, where)
    name = name_bytes.decode("ascii", errors="replace")
    count = int(np.prod(dims)) if dims else 0
    if mx_class == MX_CELL:
        cells = []
        for _ in range(count):
            kind, cell, pos = _element(payload, pos, order, where)
            if kind != MI_MATRIX:
                raise MatFileError(f"{where}: cell '{name}' holds a non-matrix element")
            cells.append(_matrix(cell, order, where)[1])
        return name, cells
    if mx_class in (MX_STRUCT, MX_OBJECT, MX_SPARSE) or complex_data:
        raise MatFileError(f"{where}: variable '{name}' is a struct/object/sparse/complex array")
    kind, real, pos = _element(payload, pos, order, where) if count else (2, b"", pos)
    if mx_class == MX_CHAR:
        return name, _chars(kind, real, dims, order, where)
    if mx_class not in MX_NUMERIC:
        raise MatFileError(f"{where}: variable '{name}' has unsupported class {mx_class}")
    values = _numbers(kind, real, order, where).astype(MX_NUMERIC[mx_class])
    return name, values.reshape(dims, order="F")


def _chars(kind: int, payload: bytes, dims: tuple[int, ...], order: str, where: str) -> Any:
    """A char array: one string per row (column-major storage), a str for one row."""
    if kind == MI_UTF8:
        text = payload.decode("utf-8")
    elif kind in (1, 2):  # one byte per character
        text = payload.decode("latin-1")
    elif kind in (MI_UTF16, 3, 4):
        text = payload.decode("utf-16-le" if order == "<" else "utf-16-be")
    elif kind == MI_UTF32:
        text = payload.decode("utf-32-le" if order == "<" else "utf-32-be")
    else:
        raise MatFileError(f"{where}: unsupported character data type {kind}")
    rows = dims[0] if dims else 0
    if rows <= 1:
        return text
    cols = len(text) // rows
    return ["".join(text[c * rows + r] for c in range(cols)) for r in range(rows)]

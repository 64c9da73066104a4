"""Column-wise string building for the tables and texts: the exact strings Python's per-value
formatting gives, without a Python call per row (a million rows in tenths of a second).

* ``fixed_point``: ``format(value, ",.{d}f")`` / ``".{d}f"``. Values are rounded from their
  scaled binary value; the few whose scaled fraction lies within a few ulps of one half (where
  only exact decimal arithmetic can tell the side, ties to even included), non-finite values
  and values too large for exact integer arithmetic go through ``format`` itself;
* ``numbered_ids``: ``f"{prefix}-{i:0{width}d}"`` for i = 1..n;
* ``fixed_width_slice``: ``value[start:]`` of equally long str values
  (``fixed_width_slice_at_least``: that slice compared with a bound);
* ``parse_days`` / ``day_strings``: YYYY-MM-DD strings to datetime64[D] and back, once per
  distinct day;
* ``string_array``: a column of str as an object array without converting each value.
"""
from typing import Sequence

import numpy as np
import pandas as pd

_MAX_EXACT_SCALED = 2.0 ** 52
_MAX_EXACT_DECIMALS = 4
_ROUNDING_MARGIN_ULPS = 4.0
_REPEAT_SAMPLE = 10_000


def _table(strings) -> np.ndarray:
    strings = list(strings)
    out = np.empty(len(strings), dtype=object)
    out[:] = strings
    return out




def objects(values: Sequence) -> np.ndarray:
    """A 1-D object array holding the given values (strings stay whole)."""
    return _table(values)


def string_array(column) -> np.ndarray:
    """The column as an object array of str: as is when every value is a str, else str()."""
    series = column if isinstance(column, pd.Series) else pd.Series(column, dtype=object)
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=False) == "string":
        return series.to_numpy(dtype=object)
    return series.astype(str).to_numpy(dtype=object)


def _ascii_lines(lines: np.ndarray) -> np.ndarray:
    """The rows of a uint8 [row, byte] array whose last column is a newline, as str values."""
    return _table(lines.tobytes().decode("ascii").split("\n")[:-1])


def _digit_layout(whole_digits: int, decimals: int, separator: str, negative: bool) -> list:
    """Per character of a fixed-point text, a literal character or the power of ten whose
    digit goes there ("-1,234.50": "-", 5, ",", 4, 3, 2, ".", 1, 0 for units 123450)."""
    layout = ["-"] if negative else []
    for place in range(whole_digits - 1, -1, -1):
        layout.append(place + decimals)
        if separator and place and place % 3 == 0:
            layout.append(separator)
    if decimals:
        layout.append(".")
        layout.extend(range(decimals - 1, -1, -1))
    return layout


def _fixed_point_texts(units: np.ndarray, decimals: int, separator: str,
                       negative: np.ndarray) -> np.ndarray:
    """Text of units / 10**decimals (non-negative int64 below 2**52) with its sign and group
    separators. Values with the same number of whole digits and sign share one layout, so
    each class is written as ASCII bytes column by column (digit = units // 10**p % 10) and
    split into str values, with no str operation per value."""
    out = np.empty(len(units), dtype=object)
    whole = units // 10 ** decimals
    whole_digits = np.ones(len(units), dtype=np.int64)
    for power in range(1, 17):
        whole_digits += whole >= 10 ** power
    kind = 2 * whole_digits + negative
    for key in np.flatnonzero(np.bincount(kind)).tolist():
        rows = np.flatnonzero(kind == key)
        layout = _digit_layout(key // 2, decimals, separator, bool(key % 2))
        lines = np.empty((len(rows), len(layout) + 1), dtype=np.uint8)
        chosen = units[rows]
        for column, item in enumerate(layout):
            lines[:, column] = ord(item) if isinstance(item, str) else (
                chosen // 10 ** item % 10 + ord("0"))
        lines[:, -1] = ord("\n")
        out[rows] = _ascii_lines(lines)
    return out


def fixed_point(values, decimals: int, separator: str = ",") -> np.ndarray:
    """format(value, f"{separator}.{decimals}f") for every value (separator "," or "");
    a column with many repeated values (volumes, zero premia) is formatted once per
    distinct bit pattern."""
    values = np.asarray(values, dtype=float)
    sample = values[:_REPEAT_SAMPLE].view(np.int64)
    if len(pd.unique(sample)) <= len(sample) // 2:
        codes, distinct = pd.factorize(values.view(np.int64))
        return _fixed_point_of_each(distinct.view(float), decimals, separator)[codes]
    return _fixed_point_of_each(values, decimals, separator)


def _fixed_point_of_each(values: np.ndarray, decimals: int, separator: str) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    if len(values) == 0:
        return out
    scale = 10.0 ** decimals
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.abs(values) * scale
        lower = np.floor(scaled)
        fraction = scaled - lower
        exact = (np.isfinite(scaled) & (scaled < _MAX_EXACT_SCALED)
                 & (np.abs(fraction - 0.5) > _ROUNDING_MARGIN_ULPS * np.spacing(scaled)))
    if decimals > _MAX_EXACT_DECIMALS:
        exact[:] = False
    rows = np.flatnonzero(exact)
    if len(rows):
        units = (lower[rows] + (fraction[rows] > 0.5)).astype(np.int64)
        out[rows] = _fixed_point_texts(units, decimals, separator, np.signbit(values[rows]))
    spec = f"{separator}.{decimals}f"
    inexact = np.flatnonzero(~exact)
    out[inexact] = _table(format(value, spec) for value in values[inexact].tolist())
    return out


def numbered_ids(prefix: str, count: int, width: int) -> np.ndarray:
    """f"{prefix}-{i:0{width}d}" for i = 1..count, as an object array (built as one ASCII
    buffer of fixed-width lines, split into the ids)."""
    if count >= 10 ** width or not prefix.isascii():
        return _table(f"{prefix}-{i:0{width}d}" for i in range(1, count + 1))
    if count == 0:
        return np.empty(0, dtype=object)
    numbers = np.arange(1, count + 1, dtype=np.int64)
    head = np.frombuffer((prefix + "-").encode("ascii"), dtype=np.uint8)
    lines = np.empty((count, len(head) + width + 1), dtype=np.uint8)
    lines[:, :len(head)] = head
    for place in range(width):
        lines[:, len(head) + place] = (numbers // 10 ** (width - 1 - place)) % 10 + ord("0")
    lines[:, -1] = ord("\n")
    return _ascii_lines(lines)


def _fixed_width_bytes(values: np.ndarray, start: int, width: int):
    """[row, byte] of value[start:] when every value is an ASCII str start + width long, cut
    from one joined buffer; else None."""
    total = start + width
    joined = "".join(values.tolist()) if len(values) else ""
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    if not ((lengths == total).all() and joined.isascii()):
        return None
    return np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(
        len(values), total)[:, start:]


def fixed_width_slice(column, start: int, width: int) -> np.ndarray:
    """value[start:] of ASCII str values all start + width long (timestamps' time of day), as
    an object array, cut from one joined buffer; other values are sliced one by one."""
    values = np.asarray(column, dtype=object)
    cut = _fixed_width_bytes(values, start, width)
    if cut is None:
        return _table(value[start:] for value in values.tolist())
    lines = np.empty((len(values), width + 1), dtype=np.uint8)
    lines[:, :width] = cut
    lines[:, -1] = ord("\n")
    return _ascii_lines(lines)


def fixed_width_slice_at_least(column, start: int, width: int, bound: str) -> np.ndarray:
    """value[start:] >= bound per value (as fixed_width_slice(...) >= bound), compared as
    bytes without making a str per value: for ASCII without NUL, byte order is str order."""
    values = np.asarray(column, dtype=object)
    cut = _fixed_width_bytes(values, start, width)
    if cut is None or not bound.isascii() or "\0" in bound or not cut.all():
        return fixed_width_slice(values, start, width) >= bound
    return np.ascontiguousarray(cut).view(f"S{width}").ravel() >= bound.encode("ascii")


def parse_days(column) -> np.ndarray:
    """YYYY-MM-DD strings ("" for none) as datetime64[D] (NaT for ""), parsed once per
    distinct value."""
    codes, distinct = pd.factorize(np.asarray(column, dtype=object))
    return np.array(distinct.tolist(), dtype="datetime64[D]")[codes] if len(codes) else \
        np.empty(0, dtype="datetime64[D]")


def day_strings(days: np.ndarray) -> np.ndarray:
    """datetime64[D] days as YYYY-MM-DD str (object array), formatted once per distinct day."""
    distinct, codes = np.unique(np.asarray(days, dtype="datetime64[D]"), return_inverse=True)
    return _table(np.datetime_as_string(distinct, unit="D").tolist())[codes]

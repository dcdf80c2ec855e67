"""Metric values to and from the fields of a Sparkplug B metric, by data type (spec 6.4.16).

Signed integers travel as two's complement: Int8, Int16 and Int32 sign-extended to 32 bits in
`int_value` (what Eclipse Tahu's Java and JavaScript decoders read back correctly), Int64 in
`long_value`. UInt32 goes into `long_value`: the specification's table says uint32, but Tahu's
Java and JavaScript encoders and the specification's own compatibility kit (TCK) put it in
`long_value`, and Tahu's JavaScript decoder (Node-RED's Sparkplug nodes use it) reads nothing else;
Tahu's Java decoder reads either. `read` accepts both.
"""

from __future__ import annotations

__all__ = ["fits", "inferred", "put", "read", "widened"]

import math
import struct
from typing import Any

from edge_agent.samples import Value
from edge_agent.sinks.sparkplug.schema import DataType

_INT_RANGES: dict[DataType, tuple[int, int]] = {
    DataType.Int8: (-(2**7), 2**7 - 1),
    DataType.Int16: (-(2**15), 2**15 - 1),
    DataType.Int32: (-(2**31), 2**31 - 1),
    DataType.Int64: (-(2**63), 2**63 - 1),
    DataType.UInt8: (0, 2**8 - 1),
    DataType.UInt16: (0, 2**16 - 1),
    DataType.UInt32: (0, 2**32 - 1),
    DataType.UInt64: (0, 2**64 - 1),
    DataType.DateTime: (0, 2**64 - 1),  # milliseconds since the epoch, UTC
}
_IN_INT_VALUE = {DataType.Int8, DataType.Int16, DataType.Int32, DataType.UInt8, DataType.UInt16}
_SIGNED_BITS = {DataType.Int8: 8, DataType.Int16: 16, DataType.Int32: 32, DataType.Int64: 64}
_FLOAT32_MAX = 3.4028234663852886e38
_TEXT = {DataType.String, DataType.Text, DataType.UUID}
_WIDEST_INTS = {DataType.Int64, DataType.UInt64}
_NUMERIC = {*_INT_RANGES, DataType.Float, DataType.Double} - {DataType.DateTime}


def fits(datatype: DataType, value: Value) -> bool:
    """Whether `value` can be sent as `datatype` without changing it (None always can: null)."""
    if value is None:
        return True
    if datatype == DataType.Boolean:
        return isinstance(value, bool)
    if datatype in _TEXT:
        return isinstance(value, str)
    if isinstance(value, bool | str):
        return False
    if datatype in _INT_RANGES:
        low, high = _INT_RANGES[datatype]
        return isinstance(value, int) and low <= value <= high
    if datatype == DataType.Double:
        return True  # integers past 2**53 lose their last digits, as in any double
    if datatype == DataType.Float:
        return _float32_exact(value)
    return False


def _float32_exact(value: float | int) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return True
    if abs(value) > _FLOAT32_MAX:
        return False
    return struct.unpack("<f", struct.pack("<f", value))[0] == value


def inferred(value: Value) -> DataType:
    """The data type a value of unknown declaration travels as."""
    if isinstance(value, bool):
        return DataType.Boolean
    if isinstance(value, str):
        return DataType.String
    if isinstance(value, int):
        for datatype in (DataType.Int64, DataType.UInt64):
            if fits(datatype, value):
                return datatype
    return DataType.Double


def widened(datatype: DataType, value: Value) -> DataType:
    """The type to declare instead when `value` does not fit `datatype`: `datatype` itself when
    the value can be put in it all the same (a boolean as 1/0, a number as text).

    Types only ever widen (Boolean, then integers, then Double, then String; within integers a
    wider one, past Int64 and UInt64 Double), so a tag whose values change kind makes the node
    rebirth a few times at most, never back and forth.
    """
    if _rank(inferred(value)) < _rank(datatype):
        return datatype
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or datatype not in _NUMERIC:
        return inferred(value)
    if isinstance(value, float) or datatype in _WIDEST_INTS | {DataType.Float, DataType.Double}:
        return DataType.Double
    return inferred(value)  # an integer outside the declared integer type's range


def _rank(datatype: DataType) -> int:
    if datatype == DataType.Boolean:
        return 0
    if datatype in _INT_RANGES:
        return 1
    if datatype in (DataType.Float, DataType.Double):
        return 2
    return 3


def put(metric: Any, datatype: DataType, value: Value) -> None:
    """Write `value` (which `fits` the type, or `widened` kept it; None for null) into the
    metric's value field."""
    if value is None:
        metric.is_null = True
        return
    if datatype in _IN_INT_VALUE:
        metric.int_value = int(value) & 0xFFFFFFFF
    elif datatype in _INT_RANGES:
        metric.long_value = int(value) & 0xFFFFFFFFFFFFFFFF
    elif datatype == DataType.Float:
        metric.float_value = float(value)
    elif datatype == DataType.Double:
        metric.double_value = float(value)
    elif datatype == DataType.Boolean:
        metric.boolean_value = bool(value)
    elif datatype in _TEXT:
        metric.string_value = str(value)
    else:
        raise ValueError(f"data type {datatype.name} is not one the agent sends")


def read(metric: Any, datatype: DataType) -> Value:
    """The value of a received metric (a command), by its declared type; None when null."""
    if metric.is_null:
        return None
    field = metric.WhichOneof("value")
    if field is None:
        return None
    raw = getattr(metric, field)
    if datatype in _SIGNED_BITS and field in ("int_value", "long_value"):
        bits = _SIGNED_BITS[datatype]
        raw &= (1 << bits) - 1
        return raw - (1 << bits) if raw >> (bits - 1) else raw
    if datatype in _INT_RANGES and field in ("int_value", "long_value"):
        return int(raw)
    if isinstance(raw, bool | int | float | str):
        return raw
    return None

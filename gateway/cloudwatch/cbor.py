"""The part of CBOR (RFC 8949) that Smithy's RPC v2 protocol uses, with the standard library.

boto3's ``cloudwatch`` client speaks ``smithy-rpc-v2-cbor`` by default: requests and answers are
one CBOR data item each. The subset: integers, byte and text strings, arrays and maps (definite
or indefinite length), tag 1 (epoch timestamps), booleans, null, undefined and floats (half,
single, double). Other tags are decoded as their content. A decoding error is ``ValueError``, so
the route answers a malformed body with ``SerializationException`` instead of a 500.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime
from typing import Any

#: Deepest nesting accepted, so a hostile body cannot exhaust the stack.
MAX_DEPTH = 64
_BREAK = object()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("CBOR data ends in the middle of an item")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def argument(self, info: int) -> int:
        if info < 24:
            return info
        sizes = {24: 1, 25: 2, 26: 4, 27: 8}
        if info not in sizes:
            raise ValueError(f"CBOR additional information {info} is not valid here")
        return int.from_bytes(self.take(sizes[info]), "big")

    def item(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError("CBOR data is nested too deeply")
        initial = self.take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if major == 7:
            return self._simple(info)
        if info == 31:
            return self._indefinite(major, depth)
        arg = self.argument(info)
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major == 2:
            return self.take(arg)
        if major == 3:
            return self.take(arg).decode("utf-8")
        if major == 4:
            return [self.item(depth + 1) for _ in range(arg)]
        if major == 5:
            return {self._key(depth): self.item(depth + 1) for _ in range(arg)}
        value = self.item(depth + 1)  # major 6: a tag
        if arg == 1 and isinstance(value, int | float):
            return datetime.fromtimestamp(value).astimezone()
        return value

    def _key(self, depth: int) -> Any:
        key = self.item(depth + 1)
        if isinstance(key, list | dict):
            raise ValueError("a CBOR map key must not be an array or a map")
        return key

    def _simple(self, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):
            return None
        if info == 25:
            return struct.unpack(">e", self.take(2))[0]
        if info == 26:
            return struct.unpack(">f", self.take(4))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8))[0]
        if info == 31:
            return _BREAK
        raise ValueError(f"CBOR simple value {info} is not supported")

    def _indefinite(self, major: int, depth: int) -> Any:
        if major in (2, 3):
            chunks = []
            while (chunk := self.item(depth + 1)) is not _BREAK:
                chunks.append(chunk)
            return b"".join(chunks) if major == 2 else "".join(chunks)
        if major == 4:
            items = []
            while (value := self.item(depth + 1)) is not _BREAK:
                items.append(value)
            return items
        if major == 5:
            out = {}
            while (key := self.item(depth + 1)) is not _BREAK:
                out[key] = self.item(depth + 1)
            return out
        raise ValueError(f"CBOR major type {major} has no indefinite length")


def loads(data: bytes) -> Any:
    """The one CBOR data item in ``data``."""
    reader = _Reader(data)
    value = reader.item()
    if value is _BREAK or reader.pos != len(data):
        raise ValueError("the body is not exactly one CBOR data item")
    return value


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([major << 5 | info]) + value.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def dumps(value: Any) -> bytes:
    """``value`` (dicts, lists, str, bytes, int, float, bool, None, datetime) as CBOR."""
    out = bytearray()
    _dump(value, out)
    return bytes(out)


def _dump(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True or value is False:
        out.append(0xF5 if value else 0xF4)
    elif isinstance(value, int):
        out += _head(0, value) if value >= 0 else _head(1, -1 - value)
    elif isinstance(value, float):
        out += b"\xfb" + struct.pack(">d", value if math.isfinite(value) else math.nan)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out += _head(3, len(raw)) + raw
    elif isinstance(value, bytes | bytearray):
        out += _head(2, len(value)) + value
    elif isinstance(value, datetime):
        out += b"\xc1"  # tag 1: seconds since the epoch
        _dump(value.timestamp(), out)
    elif isinstance(value, list | tuple):
        out += _head(4, len(value))
        for item in value:
            _dump(item, out)
    elif isinstance(value, dict):
        out += _head(5, len(value))
        for key, item in value.items():
            _dump(key, out)
            _dump(item, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR")

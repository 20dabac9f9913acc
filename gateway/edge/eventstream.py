"""The AWS event stream's binary framing, the encoding side only: what boto3's EventStream reads.

A message is a prelude (total length, headers length, CRC32 of those 8 bytes), headers (each a
1-byte name length, the name, a type byte (7: string), a 2-byte value length, the value), the
payload, and a CRC32 of everything before it; all integers big-endian. botocore decodes it
(``botocore.eventstream.EventStreamBuffer``); the gateway only writes it, so it carries this small
encoder instead of depending on botocore at run time.
"""

from __future__ import annotations

import json
import struct
from zlib import crc32

#: The response's Content-Type, as SageMaker sends it.
CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
_MAX_HEADER_VALUE = 0xFFFF


def _header(name: str, value: str) -> bytes:
    raw_name = name.encode()
    raw_value = value.encode()
    if len(raw_name) > 0xFF or len(raw_value) > _MAX_HEADER_VALUE:
        raise ValueError(f"event stream header {name!r} is too long")
    return b"%c%s%c%s%s" % (
        len(raw_name),
        raw_name,
        _STRING,
        struct.pack(">H", len(raw_value)),
        raw_value,
    )


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """One framed message: prelude, headers, payload, each part checksummed as botocore checks."""
    raw_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = _PRELUDE.size + _CRC.size + len(raw_headers) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(raw_headers))
    head = prelude + _CRC.pack(crc32(prelude))
    crc = crc32(payload, crc32(raw_headers, crc32(head)))
    return b"".join((head, raw_headers, payload, _CRC.pack(crc)))


# The headers of every part are the same: built once.
_PART_HEADERS = {
    ":event-type": "PayloadPart",
    ":content-type": "application/octet-stream",
    ":message-type": "event",
}


def payload_part(data: bytes) -> bytes:
    """A ``PayloadPart`` event: ``{"PayloadPart": {"Bytes": data}}`` to boto3."""
    return message(_PART_HEADERS, data)


def exception(kind: str, fields: dict[str, str]) -> bytes:
    """A modelled exception event (``ModelStreamError``, ``InternalStreamFailure``).

    boto3 raises it from the iteration as ``EventStreamError`` whose code is ``kind``.
    """
    headers = {
        ":exception-type": kind,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return message(headers, json.dumps(fields).encode())


def model_stream_error(message_text: str, error_code: str) -> bytes:
    """The container failed after the stream started (``StreamBroken``, a timeout ...)."""
    return exception("ModelStreamError", {"Message": message_text, "ErrorCode": error_code})


def internal_stream_failure(message_text: str) -> bytes:
    """The gateway itself failed after the stream started."""
    return exception("InternalStreamFailure", {"Message": message_text})

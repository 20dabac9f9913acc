"""The gateway's event stream encoder, read back by botocore's own decoder and parser."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.eventstream import ChecksumMismatch, EventStream, EventStreamBuffer
from botocore.exceptions import EventStreamError
from botocore.parsers import EventStreamJSONParser

from gateway.edge import eventstream


class _Raw:
    """A body that hands over its bytes in awkward pieces, as a network would."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data = data
        self.size = size

    def stream(self) -> list[bytes]:
        return [self.data[i : i + self.size] for i in range(0, len(self.data), self.size)]

    def close(self) -> None:
        pass


def events(data: bytes, size: int = 7) -> EventStream:
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    output = model.operation_model("InvokeEndpointWithResponseStream").output_shape
    shape = output.members["Body"]
    return EventStream(
        _Raw(data, size), shape, EventStreamJSONParser(), "InvokeEndpointWithResponseStream"
    )


@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_parts_decode_with_valid_checksums_in_any_split(size: int) -> None:
    payloads = [b"", b"a", bytes(range(256)) * 300]
    data = b"".join(eventstream.payload_part(p) for p in payloads)
    assert [e["PayloadPart"]["Bytes"] for e in events(data, size)] == payloads


def test_headers_are_what_sagemaker_sends() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(eventstream.payload_part(b"x"))
    (message,) = list(buffer)
    assert message.headers == {
        ":event-type": "PayloadPart",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }


def test_a_model_stream_error_is_raised_by_the_iteration() -> None:
    data = eventstream.payload_part(b"one") + eventstream.model_stream_error(
        "broke", "StreamBroken"
    )
    received = []
    with pytest.raises(EventStreamError) as caught:
        for event in events(data):
            received.append(event["PayloadPart"]["Bytes"])
    assert received == [b"one"]
    assert caught.value.response["Error"] == {"Code": "ModelStreamError", "Message": "broke"}


def test_an_internal_stream_failure_names_itself() -> None:
    with pytest.raises(EventStreamError) as caught:
        list(events(eventstream.internal_stream_failure("gateway bug")))
    assert caught.value.response["Error"]["Code"] == "InternalStreamFailure"


def test_a_corrupted_message_fails_botocore_checksum() -> None:
    data = bytearray(eventstream.payload_part(b"payload"))
    data[-6] ^= 0xFF
    with pytest.raises(ChecksumMismatch):
        list(events(bytes(data)))

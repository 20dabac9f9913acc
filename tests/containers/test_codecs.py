"""Codecs, media-type parsing and Accept negotiation, in-process."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from containers import codecs
from containers.errors import CodecError, UnsupportedAccept, UnsupportedContentType

ROWS = np.array([[0.25, -1.5, 3.0], [1e-7, 2.5, -0.125]])


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize("media", codecs.ARRAY_TYPES)
def test_every_type_round_trips_a_float_matrix(media: str) -> None:
    decoded = np.asarray(codecs.decode(codecs.encode(ROWS, media), media), dtype=np.float64)
    np.testing.assert_array_equal(decoded, ROWS)


def test_parameters_and_case_in_content_type_are_accepted() -> None:
    decoded = codecs.decode(b"1,2\r\n3,4\r\n", "Text/CSV; charset=UTF-8")
    np.testing.assert_array_equal(decoded, [[1.0, 2.0], [3.0, 4.0]])
    assert codecs.parse_media_type('text/csv; charset="utf-8"; header=absent') == (
        "text/csv",
        (("charset", "utf-8"), ("header", "absent")),
    )


def test_non_utf8_charset_is_transcoded() -> None:
    body = "é,1\n".encode("latin-1")
    utf8 = codecs.transcode_to_utf8(body, "text/csv; charset=latin-1")
    assert codecs.decode(utf8, "text/csv")[0, 0] == "é"
    with pytest.raises(UnsupportedContentType, match="klingon"):
        codecs.transcode_to_utf8(body, "text/csv; charset=klingon")


def test_csv_keeps_strings_and_reads_missing_numbers_as_nan() -> None:
    decoded = codecs.decode(b'red,1.5,"a, quoted"\nblue,,x\n', "text/csv")
    assert decoded.dtype == object
    assert decoded[0].tolist() == ["red", 1.5, "a, quoted"]
    assert decoded[1, 0] == "blue" and np.isnan(decoded[1, 1])
    numeric = codecs.decode(b"1,\n2,3\n", "text/csv")
    assert numeric.dtype == np.float64 and np.isnan(numeric[0, 1])


@pytest.mark.parametrize(
    ("body", "media", "fragment"),
    [
        (b"1,2\n3\n", "text/csv", "row 2 has 1 fields"),
        (b"\xff\xfe,1", "text/csv", "not UTF-8"),
        (b"[1, 2", "application/json", "not valid JSON"),
        (b'{"a": 1}\n{oops\n', "application/jsonlines", "line 2"),
        (b"not npy", "application/x-npy", "not a valid .npy"),
        (b"", "application/json", "empty body"),
    ],
)
def test_undecodable_bodies_name_the_problem(body: bytes, media: str, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        codecs.decode(body, media)


def test_npy_with_objects_is_refused_without_unpickling() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CodecError, match="Python objects"):
        codecs.decode(buffer.getvalue(), codecs.NPY)


def test_unknown_types_are_415_and_406() -> None:
    with pytest.raises(UnsupportedContentType, match="text/plain"):
        codecs.decode(b"x", "text/plain")
    with pytest.raises(UnsupportedAccept, match="image/png"):
        codecs.encode(ROWS, "image/png")


def test_csv_encoding_writes_rows_columns_and_dense_sparse() -> None:
    scipy_sparse = pytest.importorskip("scipy.sparse")
    matrix = scipy_sparse.csr_matrix(np.array([[0.0, 1.5], [2.0, 0.0]]))
    assert codecs.encode(matrix, codecs.CSV) == b"0.0,1.5\n2.0,0.0\n"
    assert codecs.encode(np.array([1, 0, 1]), codecs.CSV) == b"1\n0\n1\n"
    assert codecs.encode(np.array(["a", "b,c"]), codecs.CSV) == b'a\n"b,c"\n'
    assert codecs.encode(np.array([[0.1]], dtype=np.float32), codecs.CSV) == b"0.1\n"
    with pytest.raises(UnsupportedAccept, match="shape"):
        codecs.encode(np.zeros((2, 2, 2)), codecs.CSV)


def test_json_and_jsonlines_encode_numpy_values() -> None:
    value = {"scores": np.array([0.5]), "label": np.int64(3)}
    assert json.loads(codecs.encode(value, codecs.JSON)) == {"scores": [0.5], "label": 3}
    lines = codecs.encode(ROWS, codecs.JSONLINES).decode().splitlines()
    assert [json.loads(line) for line in lines] == ROWS.tolist()


def test_npy_encodes_object_arrays_as_numbers_or_strings() -> None:
    numbers = np.load(io.BytesIO(codecs.encode(np.array([1.5, 2], dtype=object), codecs.NPY)))
    assert numbers.dtype == np.float64
    words = np.load(io.BytesIO(codecs.encode(np.array(["a", 1], dtype=object), codecs.NPY)))
    assert words.tolist() == ["a", "1"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, codecs.JSON),
        ("", codecs.JSON),
        ("*/*", codecs.JSON),
        ("text/csv", codecs.CSV),
        ("text/csv;q=0.5, application/x-npy;q=0.9", codecs.NPY),
        ("image/png, text/csv;q=0.1", codecs.CSV),
        ("application/x-npy;q=0, */*;q=0.1", codecs.JSON),
        ("text/*", codecs.CSV),
        ("image/png", None),
        ("text/csv;q=0", None),
    ],
)
def test_accept_negotiation(header: str | None, expected: str | None) -> None:
    assert codecs.negotiate(header, codecs.ARRAY_TYPES, codecs.JSON) == expected


def test_accept_for_user_output_fn_passes_the_best_concrete_type() -> None:
    assert codecs.negotiate("image/png;q=0.2, text/html", None, codecs.JSON) == "text/html"
    assert codecs.negotiate("*/*", None, codecs.CSV) == codecs.CSV

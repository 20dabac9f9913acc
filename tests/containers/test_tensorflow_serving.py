"""TF-Serving request parsing and response formatting (numpy only; the package imports TF)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from containers.errors import BadInput, UnsupportedAccept
from containers.tensorflow import serving
from containers.tensorflow.serving import TFResponse

pytestmark = pytest.mark.tensorflow


def test_instances_stack_into_one_batch() -> None:
    request = serving.parse_json(b'{"instances": [[1, 2], [3, 4]]}')
    assert not request.columnar
    np.testing.assert_array_equal(request.inputs, [[1, 2], [3, 4]])


def test_bare_list_is_row_format() -> None:
    request = serving.parse_json(b"[[1.5, 2], [3, 4]]")
    assert not request.columnar
    assert isinstance(request.inputs, np.ndarray)
    assert request.inputs.shape == (2, 2)


def test_named_instances_become_columns() -> None:
    body = json.dumps({"instances": [{"a": [1, 2], "b": 3}, {"a": [4, 5], "b": 6}]}).encode()
    request = serving.parse_json(body)
    assert isinstance(request.inputs, dict)
    np.testing.assert_array_equal(request.inputs["a"], [[1, 2], [4, 5]])
    np.testing.assert_array_equal(request.inputs["b"], [3, 6])


def test_columnar_inputs_and_signature_name() -> None:
    body = b'{"signature_name": "other", "inputs": {"a": [[1, 2]], "b": [3]}}'
    request = serving.parse_json(body)
    assert request.columnar
    assert request.signature_name == "other"
    assert isinstance(request.inputs, dict)
    assert set(request.inputs) == {"a", "b"}


def test_b64_values_decode_to_bytes() -> None:
    encoded = base64.b64encode(b"\x00\xffraw").decode()
    request = serving.parse_json(json.dumps({"instances": [{"b64": encoded}]}).encode())
    assert isinstance(request.inputs, np.ndarray)
    assert request.inputs[0] == b"\x00\xffraw"


def test_jsonlines_one_instance_per_line() -> None:
    request = serving.parse_jsonlines(b"[1, 2]\n\n[3, 4]\n")
    np.testing.assert_array_equal(request.inputs, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"instances": [[1, 2]], "inputs": [[1, 2]]}', "exactly one"),
        (b'{"rows": []}', "exactly one"),
        (b'{"instances": []}', "no instances"),
        (b'{"instances": 3}', "must be a list"),
        (b'{"instances": [[1, 2], [3]]}', "rectangular"),
        (b'{"instances": [{"a": 1}, {"b": 2}]}', "same inputs"),
        (b'{"instances": [{"b64": "***"}]}', "base64"),
        (b'"text"', "must be"),
    ],
)
def test_bad_json_names_the_problem(body: bytes, fragment: str) -> None:
    with pytest.raises(BadInput, match=fragment):
        serving.parse_json(body)


def test_bad_jsonlines_names_the_line() -> None:
    with pytest.raises(BadInput, match="line 2"):
        serving.parse_jsonlines(b"[1]\n{oops\n")


def test_rows_and_columns_out() -> None:
    outputs = {"scores": np.array([[0.5, 0.5], [0.1, 0.9]]), "label": np.array([b"a", b"b"])}
    rows = json.loads(serving.to_json(TFResponse(outputs)))
    assert rows == {
        "predictions": [{"scores": [0.5, 0.5], "label": "a"}, {"scores": [0.1, 0.9], "label": "b"}]
    }
    columns = json.loads(serving.to_json(TFResponse(outputs, columnar=True)))
    assert columns == {"outputs": {"scores": [[0.5, 0.5], [0.1, 0.9]], "label": ["a", "b"]}}
    lines = serving.to_jsonlines(TFResponse(outputs["scores"])).splitlines()
    assert [json.loads(line) for line in lines] == [[0.5, 0.5], [0.1, 0.9]]


def test_single_output_dict_unwraps_and_non_utf8_bytes_use_b64() -> None:
    body = json.loads(serving.to_json(TFResponse({"y": np.array([b"\xff"], dtype=object)})))
    assert body == {"predictions": [{"b64": base64.b64encode(b"\xff").decode()}]}


def test_several_outputs_do_not_fit_one_array() -> None:
    response = TFResponse({"a": np.zeros(2), "b": np.ones(2)})
    with pytest.raises(UnsupportedAccept, match="2 outputs"):
        serving.single_output(response, "text/csv")

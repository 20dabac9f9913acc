"""Content-type codecs, media-type parsing and ``Accept`` negotiation for the container contract.

Decoding never unpickles (``.npy`` is read with ``allow_pickle=False``). CSV keeps cells that are
not numbers as strings (an object array), so a preprocessing model with categorical columns can be
fed raw rows; the CSV encoder writes 2-D rows, densifying sparse matrices, so its output feeds the
next container of a Serial pipeline. Header parsing is cached: a server sees few distinct headers.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from containers.errors import CodecError, UnsupportedAccept, UnsupportedContentType

JSON = "application/json"
CSV = "text/csv"
JSONLINES = "application/jsonlines"
NPY = "application/x-npy"
#: The four media types every default handler speaks.
ARRAY_TYPES: tuple[str, ...] = (JSON, CSV, JSONLINES, NPY)
ANY = "*/*"
_TEXT_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


@lru_cache(maxsize=512)
def parse_media_type(header: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``"Text/CSV; charset=UTF-8"`` -> ``("text/csv", (("charset", "UTF-8"),))``."""
    media, _, rest = header.partition(";")
    params: list[tuple[str, str]] = []
    for part in rest.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            params.append((key.strip().lower(), value.strip().strip('"')))
    return media.strip().lower(), tuple(params)


def media_type(header: str) -> str:
    """The bare media type of a ``Content-Type`` header, lower-cased, parameters dropped."""
    return parse_media_type(header)[0]


@lru_cache(maxsize=512)
def parse_accept(header: str) -> tuple[str, ...]:
    """Media types of an ``Accept`` header, best first (by q-value, then order); q=0 dropped."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")):
        media, params = parse_media_type(item)
        if not media:
            continue
        q = 1.0
        for key, value in params:
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                if not math.isfinite(q):
                    q = 0.0
        if q > 0:
            ranked.append((-q, index, media))
    return tuple(media for _, _, media in sorted(ranked))


@lru_cache(maxsize=512)
def negotiate(header: str | None, supported: tuple[str, ...] | None, default: str) -> str | None:
    """Pick the response media type for an ``Accept`` header.

    ``supported=None`` means "whatever the user's ``output_fn`` makes": the best concrete type wins.
    A missing header, ``*/*`` (or a wildcard that covers ``default``) gives ``default``. ``None``
    means nothing acceptable can be produced (406).
    """
    if not header or not header.strip():
        return default
    for media in parse_accept(header):
        if media == ANY:
            if supported is None or default in supported:
                return default
            return supported[0] if supported else None
        if media.endswith("/*"):
            prefix = media[:-1]
            if default.startswith(prefix) and (supported is None or default in supported):
                return default
            for candidate in supported or ():
                if candidate.startswith(prefix):
                    return candidate
            continue
        if supported is None or media in supported:
            return media
    return None


def transcode_to_utf8(body: bytes, header: str) -> bytes:
    """Re-encode a text body whose ``charset`` parameter is not UTF-8, so decoders see UTF-8."""
    charset = dict(parse_media_type(header)[1]).get("charset")
    if charset is None or charset.lower() in _TEXT_CHARSETS:
        return body
    try:
        return body.decode(charset).encode("utf-8")
    except LookupError as exc:
        raise UnsupportedContentType(f"unknown charset {charset!r} in {header!r}") from exc
    except UnicodeDecodeError as exc:
        raise CodecError(f"body is not valid {charset}: {exc.reason} at byte {exc.start}") from exc


# --- decoding ---------------------------------------------------------------------------------


def decode(body: bytes, content_type: str) -> Any:
    """Decode ``body``: JSON -> Python objects, CSV -> 2-D array (float, or object when some cells
    are not numbers), JSON lines -> list of values, npy -> array. Raises :class:`CodecError`."""
    media = media_type(content_type)
    decoder = _DECODERS.get(media)
    if decoder is None:
        raise UnsupportedContentType(
            f"content type {media!r} is not supported; use one of {', '.join(ARRAY_TYPES)}"
        )
    if not body:
        raise CodecError(f"empty body: nothing to decode as {media}")
    return decoder(body)


def _text(body: bytes, what: str) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CodecError(f"{what} body is not UTF-8: {exc.reason} at byte {exc.start}") from exc


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(_text(body, "JSON"))
    except json.JSONDecodeError as exc:
        raise CodecError(
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def decode_jsonlines(body: bytes) -> list[Any]:
    values: list[Any] = []
    for number, line in enumerate(_text(body, "JSON lines").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CodecError(
                f"line {number} is not valid JSON: {exc.msg} at column {exc.colno}"
            ) from None
    if not values:
        raise CodecError("JSON lines body has no lines")
    return values


def decode_csv(body: bytes) -> np.ndarray:
    text = _text(body, "CSV")
    if '"' in text:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    else:
        rows = [line.split(",") for line in text.splitlines() if line.strip()]
    if not rows:
        raise CodecError("CSV body has no rows")
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise CodecError(f"CSV row {number} has {len(row)} fields, row 1 has {width}")
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:
        pass
    cells = [[_cell(cell) for cell in row] for row in rows]
    if all(isinstance(cell, float) for row in cells for cell in row):
        return np.array(cells, dtype=np.float64)  # numbers with empty (missing) cells
    array = np.empty((len(cells), width), dtype=object)
    array[:] = cells
    return array


def _cell(text: str) -> float | str:
    stripped = text.strip()
    if not stripped:
        return math.nan
    try:
        return float(stripped)
    except ValueError:
        return text


def decode_npy(body: bytes) -> np.ndarray:
    if not body.startswith(b"\x93NUMPY"):
        raise CodecError("body is not a valid .npy array: it lacks the \\x93NUMPY magic prefix")
    try:
        return np.load(io.BytesIO(body), allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise CodecError("npy bodies holding Python objects are refused") from exc
        raise CodecError(f"body is not a valid .npy array: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise CodecError(f"body is not a valid .npy array: {exc}") from exc


_DECODERS = {JSON: decode_json, CSV: decode_csv, JSONLINES: decode_jsonlines, NPY: decode_npy}


# --- encoding ---------------------------------------------------------------------------------


def encode(data: Any, accept: str) -> bytes:
    """Encode a prediction as ``accept`` (a bare media type)."""
    encoder = _ENCODERS.get(media_type(accept))
    if encoder is None:
        raise UnsupportedAccept(
            f"accept {accept!r} is not supported; use one of {', '.join(ARRAY_TYPES)}"
        )
    return encoder(data)


def _dense(data: Any) -> Any:
    """Sparse matrices (scipy) become dense arrays; everything else is left alone."""
    toarray = getattr(data, "toarray", None)
    return toarray() if callable(toarray) and not isinstance(data, np.ndarray) else data


def _array(data: Any) -> np.ndarray:
    """The prediction as one numpy array (sparse made dense); 406 when it is not rectangular."""
    try:
        return np.asarray(_dense(data))
    except ValueError as exc:
        raise UnsupportedAccept(f"the prediction is not a rectangular array: {exc}") from exc


def to_jsonable(data: Any) -> Any:
    """Numpy arrays, scalars, sparse matrices and their containers as plain Python values."""
    data = _dense(data)
    if isinstance(data, np.ndarray):
        return data.tolist()
    if isinstance(data, np.generic):
        return data.item()
    if isinstance(data, Mapping):
        return {str(key): to_jsonable(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [to_jsonable(value) for value in data]
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data


def encode_json(data: Any) -> bytes:
    if isinstance(data, np.ndarray) and data.dtype.kind in "fiub":
        return json.dumps(data.tolist()).encode()
    try:
        return json.dumps(to_jsonable(data)).encode()
    except (TypeError, ValueError) as exc:
        raise UnsupportedAccept(f"the prediction cannot be written as JSON: {exc}") from exc


def encode_jsonlines(data: Any) -> bytes:
    values = to_jsonable(data)
    if not isinstance(values, list):
        values = [values]
    try:
        return "".join(json.dumps(value) + "\n" for value in values).encode()
    except (TypeError, ValueError) as exc:
        raise UnsupportedAccept(f"the prediction cannot be written as JSON lines: {exc}") from exc


def encode_csv(data: Any) -> bytes:
    array = _array(data)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(-1, 1)  # one value per line, as SageMaker's containers write
    elif array.ndim > 2:
        raise UnsupportedAccept(
            f"a prediction of shape {array.shape} cannot be written as CSV rows; "
            "ask for JSON or npy"
        )
    kind = array.dtype.kind
    if kind == "f" and array.dtype.itemsize < 8:
        rows: list[list[Any]] = array.astype(str).tolist()  # shortest repr of each float32 value
    else:
        rows = array.tolist()
    if kind in "fiub":
        return "".join(",".join(map(str, row)) + "\n" for row in rows).encode()
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def encode_npy(data: Any) -> bytes:
    array = _array(data)
    if array.dtype == object:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            array = array.astype(str)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


_ENCODERS = {JSON: encode_json, CSV: encode_csv, JSONLINES: encode_jsonlines, NPY: encode_npy}

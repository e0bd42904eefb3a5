"""jsonlite: the hook's JSON without the json package. It must agree with json on everything the hook reads or
writes, and fail with the same kind of error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from token_budget import jsonlite

ROOT = Path(__file__).resolve().parents[1]

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                         | st.dictionaries(st.text(), inner, max_size=5), max_leaves=30)


@given(documents)
def test_loads_reads_what_json_writes(value: object) -> None:
    text = json.dumps(value)
    assert jsonlite.loads(text) == json.loads(text)
    assert jsonlite.loads(text.encode()) == json.loads(text.encode())
    assert jsonlite.loads(f" \n{text}\t ") == json.loads(text)


@given(documents, st.booleans())
def test_dumps_writes_what_json_writes(value: object, sort_keys: bool) -> None:
    assert jsonlite.dumps(value, sort_keys=sort_keys) == json.dumps(value, sort_keys=sort_keys)


@given(st.text(max_size=40))
def test_malformed_text_fails_as_json_fails(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            jsonlite.loads(text)
    else:
        assert jsonlite.loads(text) == expected or expected != expected  # NaN is not equal to itself


@pytest.mark.parametrize("text", ["", "   ", "{", '{"a": 1} x', "[1,]", "\ufeff{}", "nul", '"\\x"'])
def test_errors_are_json_decode_errors_with_json_positions(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        jsonlite.loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert (ours.value.msg, ours.value.pos) == (theirs.value.msg, theirs.value.pos)


def test_invalid_utf8_bytes_are_a_value_error() -> None:
    with pytest.raises(ValueError):
        jsonlite.loads(b'{"a": "\xff"}')


def test_default_and_unserializable_values() -> None:
    assert jsonlite.dumps({"b": 3, "a": object}, sort_keys=True, default=str) == json.dumps(
        {"b": 3, "a": object}, sort_keys=True, default=str)
    with pytest.raises(TypeError):
        jsonlite.dumps({"a": object()})


def test_importing_it_loads_neither_json_nor_re() -> None:
    code = ("import sys, token_budget.jsonlite as j; j.loads(j.dumps({'a': [1.5, None]})); "
            "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_text_is_a_non_empty_string_or_none() -> None:
    """The one reader of optional string fields in payloads and transcripts (hook, enforce, transcript, status
    line): a number, a list, null or "" in a field reads as absent."""
    assert [jsonlite.text(v) for v in ("sess-1", "", None, 7, ["a"], {"a": 1})] == ["sess-1", None, None, None, None,
                                                                                      None]

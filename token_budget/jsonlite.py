"""JSON for the hook's hot path, without importing the json package.

`import json` loads re, and with it enum, functools and collections: about a quarter of a hook's own start-up. The
work is done by `_json`, the C accelerator json itself delegates to; this module only supplies the few settings
json would pass it. Where `_json` is missing (another Python implementation), it is plain json. Modules off the
hot path use json directly. tests/test_jsonlite.py checks both functions against json on generated documents.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_WHITESPACE = " \t\n\r"

try:
    from _json import encode_basestring_ascii, make_encoder, make_scanner
except ImportError:  # pragma: no cover - CPython always has it
    from json import dumps, loads  # noqa: F401
else:

    def _constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]

    class _Settings:  # the attributes make_scanner reads from a json.JSONDecoder
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = staticmethod(_constant)

    _scan = make_scanner(_Settings())

    def _error(message: str, text: str, pos: int) -> ValueError:
        from json import JSONDecodeError  # only a malformed document pays for the json package

        return JSONDecodeError(message, text, pos)

    def loads(text: str | bytes | bytearray) -> Any:
        """json.loads for UTF-8 bytes or text; raises json.JSONDecodeError (a ValueError) for anything else."""
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8")  # UnicodeDecodeError is a ValueError too
        if text.startswith("\ufeff"):
            raise _error("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = _scan(text, start)
        except StopIteration as exc:
            raise _error("Expecting value", text, exc.value) from None
        if text[end:].strip(_WHITESPACE):
            raise _error("Extra data", text, end + len(text[end:]) - len(text[end:].lstrip(_WHITESPACE)))
        return value

    def _refuse(value: Any) -> Any:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    def dumps(value: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> str:
        """json.dumps(value, sort_keys=…, default=…) with json's default separators and ASCII output."""
        encode = make_encoder({}, default or _refuse, encode_basestring_ascii, None, ": ", ", ", sort_keys, False, True)
        return "".join(encode(value, 0))

    try:  # _json is private: should a later Python change its signatures, fall back rather than fail every hook
        if loads(dumps({"a": [1, 2.5, None, True, "é"]}, sort_keys=True)) != {"a": [1, 2.5, None, True, "é"]}:
            raise ValueError("_json round trip differs")
    except (TypeError, ValueError, AttributeError):  # pragma: no cover - CPython 3.10 to 3.13 pass
        from json import dumps, loads  # noqa: F811


def text(value: Any) -> str | None:
    """A decoded value when it is a non-empty string, else None: how payloads' and transcripts' optional string
    fields are read."""
    return value if isinstance(value, str) and value else None

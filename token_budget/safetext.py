"""Text from transcripts, prompts and config files made safe to show: no control characters reach a terminal, and
no spreadsheet formula reaches a CSV cell.

A model name or workflow name is whatever a transcript line or a prompt said; written raw to a terminal, an escape
sequence in it can rewrite the screen, set the window title or the clipboard (OSC 52). Standard library only, no
`re` (the hook and the status line import this).
"""

from __future__ import annotations

_C0_C1 = [*range(0x00, 0x20), *range(0x7F, 0xA0)]
_DROP_ALL = dict.fromkeys(_C0_C1)  # str.translate: a code point mapped to None is deleted
_DROP_BUT_LINES = dict.fromkeys(c for c in _C0_C1 if c not in (0x09, 0x0A))
CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def printable(text: object, *, lines: bool = False) -> str:
    """`text` without C0/C1 control characters (tab and newline kept when `lines`)."""
    return str(text).translate(_DROP_BUT_LINES if lines else _DROP_ALL)


def terminal_safe(text: str) -> str:
    """Whole terminal output: control characters dropped except newline, tab and the SGR colour sequences
    (ESC [ digits ; m) that the renderers themselves write."""
    if not any(ord(ch) < 0x20 and ch not in "\n\t" or 0x7F <= ord(ch) < 0xA0 for ch in text):
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\x1b" and i + 1 < n and text[i + 1] == "[":
            j = i + 2
            while j < n and (text[j].isdigit() or text[j] == ";"):
                j += 1
            if j < n and text[j] == "m":
                out.append(text[i : j + 1])
                i = j + 1
                continue
            i += 1  # any other escape sequence loses its ESC, and so its meaning
            continue
        code = ord(ch)
        if (code < 0x20 and ch not in "\n\t") or 0x7F <= code < 0xA0:
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def csv_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: control characters dropped, and a text starting with = + - @
    (or a tab or CR) prefixed with ' so it is never evaluated as a formula. Numbers pass unchanged."""
    if not isinstance(value, str):
        return value
    if value.startswith(CSV_TRIGGERS):
        return "'" + printable(value)
    clean = printable(value)
    return "'" + clean if clean.startswith(CSV_TRIGGERS) else clean


class SafeStream:
    """A text stream that passes everything written through `terminal_safe` (the CLI's stdout and stderr)."""

    def __init__(self, stream: object) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(terminal_safe(text) if isinstance(text, str) else text)  # type: ignore[attr-defined]
        return len(text)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)

"""datetime's classes for the hot path, from the `_datetime` extension, without the `datetime` module's source.

CPython's `datetime.py` defines every class in Python (and imports math and operator for them), then replaces them
all with the C implementations of `_datetime` at its end: a hook paid about a tenth of a bare interpreter start for
classes it never uses. The names here are those very C classes (`datetime.datetime is lean_datetime.datetime`
wherever both are loaded), so values, comparisons and isinstance checks are the same whichever module made them.
An interpreter without the extension (not CPython) gets the module's own.
"""

from __future__ import annotations

try:
    from _datetime import date, datetime, timedelta, timezone, tzinfo
except ImportError:  # pragma: no cover - not CPython
    from datetime import date, datetime, timedelta, timezone, tzinfo

__all__ = ["date", "datetime", "timedelta", "timezone", "tzinfo"]

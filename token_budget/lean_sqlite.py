"""SQLite's driver for the hook: the `_sqlite3` extension, without what `import sqlite3` loads around it.

`import sqlite3` costs a hook about a quarter of a bare interpreter start, and most of it is not SQLite:
- the package's `dbapi2.py` imports `datetime` and `collections.abc`, to register adapters for date and datetime
  parameters (deprecated since Python 3.12; the ledger binds only text, numbers and None: timestamps are
  `clock.timestamp()` text) and to register `Row` as a `collections.abc.Sequence` (nothing here asks);
- CPython 3.11+'s `_sqlite3` imports `functools` when it loads, only to take `functools.lru_cache`, with which
  every connection builds its statement cache; `functools` in turn loads collections, operator, reprlib, keyword
  and types.

`sqlite3` here is the `_sqlite3` module: `connect`, `Row`, the exceptions and the connection and cursor classes are
the very objects the package re-exports, so a `sqlite3.DatabaseError` raised anywhere is caught as one here, and
code that imports the package later in the same process shares every connection with this one. It is loaded
with a stand-in `functools` in `sys.modules` whose `lru_cache` builds exactly what `functools.lru_cache(maxsize)`
builds from an integer size (C `_functools._lru_cache_wrapper`, which is the statement cache; what
`update_wrapper` adds is metadata the cache never reads). The stand-in leaves `sys.modules` as soon as
`_sqlite3` is loaded, so any later `import functools` gets the real module; anything it does not provide makes
the load fall back to the plain import.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The CPython versions whose _sqlite3 asks functools for lru_cache alone (Modules/_sqlite/module.c,
# load_functools_lru_cache) and calls it as lru_cache(int)(connection) (connection.c, new_statement_cache).
STAND_IN_VERSIONS = ((3, 11), (3, 12), (3, 13))


def _lru_cache(maxsize: Any = 128, typed: bool = False) -> Any:
    """functools.lru_cache for an integer size, as functools builds it with its C wrapper."""
    if type(maxsize) is not int:  # not what _sqlite3 passes: the real one (the stand-in is gone from sys.modules)
        from functools import lru_cache

        return lru_cache(maxsize, typed)
    size = max(maxsize, 0)

    def decorating_function(user_function: Any) -> Any:
        from _functools import _lru_cache_wrapper

        return _lru_cache_wrapper(user_function, size, typed, _cache_info)

    return decorating_function


def _cache_info(hits: int, misses: int, maxsize: int, currsize: int) -> tuple[int, int, int, int]:
    return (hits, misses, maxsize, currsize)  # functools' _CacheInfo without namedtuple (cache_info() only)


class _StandInMissing(ImportError):
    pass


def _stand_in() -> Any:
    module = type(sys)("functools")
    module.lru_cache = _lru_cache

    def __getattr__(name: str) -> Any:  # anything else: this _sqlite3 is not the one the stand-in was made for
        raise _StandInMissing(f"functools.{name}")

    module.__getattr__ = __getattr__
    return module


def load() -> Any:
    """The `_sqlite3` module, loaded without functools where the running CPython allows it."""
    loaded = sys.modules.get("_sqlite3")
    if loaded is not None:
        return loaded
    if "functools" in sys.modules or sys.implementation.name != "cpython" or \
            sys.version_info[:2] not in STAND_IN_VERSIONS:
        import _sqlite3

        return _sqlite3
    stand_in = sys.modules["functools"] = _stand_in()
    try:
        import _sqlite3
    except ImportError:
        _sqlite3 = None
    finally:
        if sys.modules.get("functools") is stand_in:
            del sys.modules["functools"]
    if _sqlite3 is None:  # the stand-in was not enough: the plain import, with the real functools
        import _sqlite3
    return _sqlite3


sqlite3 = load()


def dict_rows(cursor: Any) -> list[dict[str, Any]]:
    """A cursor's rows as dicts keyed by column name (what the sqlite3 package's Row would give, as plain dicts)."""
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]

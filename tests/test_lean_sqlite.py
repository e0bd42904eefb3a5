"""lean_sqlite: the hook's SQLite driver is the `_sqlite3` extension, loaded without functools and collections, and
it behaves as `sqlite3` does for everything the ledger uses."""

from __future__ import annotations

import functools
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from budget_helpers import Session, write_config
from hypothesis import given, settings
from hypothesis import strategies as st

from token_budget import lean_sqlite
from token_budget.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent

FRESH = """
import sys
sys.path.insert(0, sys.argv[1])
from token_budget.lean_sqlite import sqlite3
heavy = sorted({"functools", "collections", "collections.abc", "datetime", "sqlite3"} & set(sys.modules))
db = sqlite3.connect(":memory:", isolation_level=None)
db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
for n in range(400):  # more distinct statements than the statement cache holds (128), each run twice
    for _ in range(2):
        db.execute(f"INSERT OR REPLACE INTO t (k, v) VALUES (?, ?) -- {n}", (n, str(n)))
total = db.execute("SELECT count(*), sum(k) FROM t").fetchone()
cursor = db.execute("SELECT k, v FROM t WHERE k = ?", (7,))
cursor.row_factory = sqlite3.Row
row = cursor.fetchone()
try:
    db.execute("SELECT * FROM missing")
    error = None
except sqlite3.OperationalError as exc:
    error = type(exc).__name__
import functools
import sqlite3 as package
print(",".join(heavy))
print(total, dict(row), error, hasattr(functools, "reduce"), package.Row is sqlite3.Row,
      package.DatabaseError is sqlite3.DatabaseError, package.connect is sqlite3.connect)
"""


def test_a_fresh_interpreter_loads_sqlite_without_functools_or_collections() -> None:
    """What the hook process gets: no functools, collections or datetime, a working statement cache, the same
    classes as the package, and the real functools for whoever imports it afterwards."""
    out = subprocess.run([sys.executable, "-S", "-c", FRESH, str(ROOT)], capture_output=True, text=True, check=True)
    heavy, rest = out.stdout.split("\n")[:2]
    assert rest == "(400, 79800) {'k': 7, 'v': '7'} OperationalError True True True True"
    if sys.version_info[:2] in lean_sqlite.STAND_IN_VERSIONS:
        assert heavy == ""  # elsewhere the plain import: whatever that version's _sqlite3 loads


def test_in_a_process_that_has_functools_it_is_the_extension_itself() -> None:
    assert lean_sqlite.sqlite3 is sys.modules["_sqlite3"]
    assert lean_sqlite.sqlite3.connect is sqlite3.connect and lean_sqlite.sqlite3.Row is sqlite3.Row
    assert sys.modules["functools"] is functools  # the stand-in never stays behind


@settings(max_examples=200, deadline=None)
@given(size=st.integers(-2, 6), calls=st.lists(st.integers(0, 9), max_size=60))
def test_the_stand_in_lru_cache_is_functools_lru_cache(size: int, calls: list[int]) -> None:
    """Same answers, same hits and misses, same evictions, for every integer size _sqlite3 may pass."""
    seen_real: list[int] = []
    seen_ours: list[int] = []
    real = functools.lru_cache(size)(lambda n: seen_real.append(n) or n * 3)
    ours = lean_sqlite._lru_cache(size)(lambda n: seen_ours.append(n) or n * 3)
    assert [real(n) for n in calls] == [ours(n) for n in calls]
    assert seen_real == seen_ours  # the same calls reached the function: the same evictions
    assert tuple(real.cache_info()) == ours.cache_info()


def test_the_stand_in_refuses_what_it_does_not_provide() -> None:
    """A _sqlite3 that asked functools for anything else would fail to load with it, and load plainly instead."""
    stand_in = lean_sqlite._stand_in()
    assert stand_in.lru_cache is lean_sqlite._lru_cache
    with pytest.raises(ImportError):
        stand_in.partial  # noqa: B018
    assert lean_sqlite._lru_cache(None) is not None  # not an integer: the real lru_cache builds it


def test_hooks_bind_no_date_or_datetime(claude_dir: Path, data_dir: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The package registers adapters for date and datetime parameters; the lean driver does not. Without them,
    hooks still record, decide (80%: an alert; 100%: a block) and acknowledge: every value they bind is text, a
    number or None."""
    for kind in [k for k in sqlite3.adapters if k[0].__module__ == "datetime"]:
        monkeypatch.delitem(sqlite3.adapters, kind)
    write_config(tmp_path, monkeypatch, "timezone: Europe/Paris\nbudgets:\n  global: {daily_limit: 10000}\n")
    session = Session(claude_dir)
    assert session.hook("SessionStart") == (0, {})
    session.spend(8500)
    code, alert = session.hook("PreToolUse")
    assert code == 0 and "8,500 / 10,000 tokens" in alert["systemMessage"]
    session.spend(2000)
    code, blocked = session.hook("PreToolUse")
    assert blocked["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert session.hook("PostToolUse") == (0, {})
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 2

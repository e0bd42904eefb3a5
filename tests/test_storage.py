"""The storage interface (token_budget/storage.py): the SQLite ledger implements every method of it, as declared,
and no core module outside the SQLite backend and its migrations holds a query, so a second backend is one module."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from token_budget import storage
from token_budget.ledger import Ledger

PACKAGE = Path(storage.__file__).parent
SQLITE_BACKEND = {"ledger.py", "ledger_reports.py", "ledger_outbox.py", "ledger_reconcile.py", "ledger_team.py",
                  "ledger_diagnostics.py", "migrations.py"}
# The team server's own backend (PostgreSQL): its schema and migrations, and the queries a member and the lead run
# on it. Every local question of team/ (the spool, the link, the claims) goes through storage.TeamSpool.
POSTGRESQL_BACKEND = {"server.py", "schema.py"}
# The Claude Code adapter reaches storage through the same methods, with no exception.
PROTOCOLS = [cls for _, cls in inspect.getmembers(storage, inspect.isclass)
             if cls.__module__ == storage.__name__ and cls is not storage.Storage]
METHODS = sorted({(cls.__name__, name) for cls in PROTOCOLS for name, value in vars(cls).items()
                  if callable(value) and not name.startswith("_")})
# Words only a query holds, where they read as SQL (uppercase, followed by what SQL puts after them).
SQL = re.compile(r"\b(SELECT\s+[\w*(]|INSERT\s+(OR\s+\w+\s+)?INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b|"
                 r"CREATE\s+(TABLE|INDEX|TRIGGER)\b|PRAGMA\s+\w+)")


def test_storage_is_every_protocol() -> None:
    assert {cls.__name__ for cls in PROTOCOLS} == {
        "Transactional", "UsageStore", "ReportStore", "AlertStore", "EventStore", "WorkflowStore", "SettingsStore",
        "OutboxStore", "ReconcileStore", "ReadPositions", "SessionMemory", "TeamSpool", "Diagnostics"}
    assert set(storage.Storage.__mro__) >= set(PROTOCOLS)


@pytest.mark.parametrize(("protocol", "name"), METHODS)
def test_the_sqlite_ledger_implements_each_method_as_declared(protocol: str, name: str) -> None:
    declared = inspect.signature(getattr(getattr(storage, protocol), name))
    implemented = inspect.signature(getattr(Ledger, name))
    assert list(implemented.parameters) == list(declared.parameters), name
    for param, spec in declared.parameters.items():
        got = implemented.parameters[param]
        assert (got.kind, got.default) == (spec.kind, spec.default), (name, param)
    assert getattr(getattr(storage, protocol), name).__doc__, f"{protocol}.{name} says what it does"


def _strings(path: Path) -> list[str]:
    """Every string constant in a module, f-strings' literal parts included, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _holds_sql(path: Path) -> bool:
    return any(SQL.search(text) for text in _strings(path)) or ".execute(" in path.read_text()


def test_no_core_module_outside_the_sqlite_backend_holds_sql() -> None:
    core = [p for p in PACKAGE.glob("*.py") if p.name not in SQLITE_BACKEND]
    assert core and not [p.name for p in core if _holds_sql(p)]
    assert all(_holds_sql(PACKAGE / name) for name in SQLITE_BACKEND)  # the check can see a query


def test_no_adapter_module_holds_sql() -> None:
    adapter = list((PACKAGE / "claude").glob("*.py"))
    assert {"doctor.py", "enforce.py", "transcript.py", "hook.py"} <= {p.name for p in adapter}
    assert not [p.name for p in adapter if _holds_sql(p)]


def test_no_team_module_outside_the_postgresql_backend_holds_sql() -> None:
    team = {p.name: p for p in (PACKAGE / "team").glob("*.py")}
    assert {"states.py", "status.py", "sync.py", "doctor.py", "report.py"} <= set(team)
    assert not [name for name, p in team.items() if name not in POSTGRESQL_BACKEND and _holds_sql(p)]
    assert all(_holds_sql(team[name]) for name in POSTGRESQL_BACKEND)  # the check can see their queries


def test_the_sql_check_finds_a_query_in_a_module(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('def f(store):\n    """Selects nothing."""\n    return store.db.execute(f"SELECT a FROM t")\n')
    assert _holds_sql(module)
    module.write_text('MESSAGE = "select the budget you want, then UPDATE it"\n')
    assert not _holds_sql(module)
    module.write_text('Q = "UPDATE alerts SET acked_at = ?"\n')
    assert _holds_sql(module)


def test_the_core_reaches_storage_through_the_protocol() -> None:
    """Only the detached workers (the alert sender and the team sync, which open the store they work from) import
    the SQLite ledger; every other core module is handed a `Storage`."""
    from test_architecture import graph

    importers = {name for name, targets in graph().items()
                 if "token_budget.ledger" in targets and not name.startswith(("token_budget.claude",
                                                                                "token_budget.cli"))}
    assert importers == {"token_budget.delivery", "token_budget.team.sync"}


def test_the_queries_no_hook_decision_runs_load_at_their_first_use(tmp_path: Path) -> None:
    """ledger.py holds what the hooks run; each other module of the backend is loaded by the first call of one of
    its methods, and from then on the method is the plain function on the class."""
    code = (
        "import sys\n"
        "from token_budget.ledger import Ledger\n"
        "def loaded(): return sorted(m for m in sys.modules if m.startswith('token_budget.ledger_'))\n"
        "ledger = Ledger.open(sys.argv[1])\n"
        "print(loaded())\n"
        "ledger.list_events()\n"
        "print(loaded())\n"
        "print(Ledger.list_events is sys.modules['token_budget.ledger_reports'].list_events)\n"
        "print(ledger.team_link(), loaded())\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "[]",
        "['token_budget.ledger_reports']",
        "True",
        "None ['token_budget.ledger_reports', 'token_budget.ledger_team']",
    ]

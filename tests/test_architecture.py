"""The module graph: no import cycle (lazy imports inside functions count too: importing late hides a cycle, it
does not remove it), and the core knows nothing of Claude Code (no module outside `claude/` and `cli/` imports
`token_budget.claude`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "token_budget"
# The entry points wire the adapters to the core; they are not part of it.
ENTRY_POINTS = {"token_budget.__main__", "token_budget.entry"}
# Known and not yet moved: nothing. (Alert text used to import the adapter for the slash command; the hook now
# stores its spelling with each delivery.) Nothing may join this list.
NOT_YET_MOVED: dict[str, list[str]] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every token_budget module `path` imports, at module top or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block) for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # `if TYPE_CHECKING:` imports never run
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    # A package's __init__ is imported by everything below it: that edge is Python's, not a design choice.
    return {name: {t for t in imports_of(path, modules) if not name.startswith(t + ".")}
            for name, path in paths.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def is_core(name: str) -> bool:
    return not name.startswith(("token_budget.claude", "token_budget.cli")) and name not in ENTRY_POINTS


def test_the_import_graph_has_no_cycle() -> None:
    assert cycles(graph()) == []


def test_no_core_module_imports_the_claude_code_adapter() -> None:
    offenders = {name: sorted(t for t in targets if t.startswith("token_budget.claude"))
                 for name, targets in graph().items() if is_core(name)}
    assert {name: t for name, t in offenders.items() if t} == NOT_YET_MOVED


def test_the_checks_see_a_cycle_and_a_lazy_import() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    edges = graph()
    assert "token_budget.families" in edges["token_budget.policy"]
    assert "token_budget.policy" in edges["token_budget.budget_status"]  # imported inside budget_status()


CLAUDE_CODE_WORDS = re.compile(r"/model\b|/compact\b|/token-budget:|CLAUDE_[A-Z_]+|\"model\": \"")


def test_no_core_module_spells_a_claude_code_command_or_variable() -> None:
    """Docstrings may explain; the strings a core module builds messages or reads the environment with may not."""
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        found += [f"{path.name}:{node.lineno} {node.value[:60]!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and id(node) not in docstrings and CLAUDE_CODE_WORDS.search(node.value)]
    assert found == []


def test_the_plugin_data_folder_is_the_adapters_to_read(monkeypatch, tmp_path: Path) -> None:
    from token_budget import claude, paths

    monkeypatch.delenv("TOKEN_BUDGET_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CLAUDE_PLUGIN_DATA", str(tmp_path / "plugin"))
    assert paths.data_dir(create=False) == str(tmp_path / "xdg" / "token-budget")
    assert paths.data_dir(create=False, host=claude.plugin_data()) == str(tmp_path / "plugin")
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(tmp_path / "home"))
    assert paths.data_dir(create=False, host=claude.plugin_data()) == str(tmp_path / "home")
    assert paths.data_dir(tmp_path / "explicit", create=False, host=claude.plugin_data()) == str(tmp_path / "explicit")


def test_one_function_owns_the_data_dir_rule() -> None:
    """paths.data_dir is the only function of that name (the CLI's Env.data_dir is its value for one command); the
    adapter supplies its host folder as input."""
    defined = [f"{p.relative_to(PACKAGE)}:{node.lineno}" for p in PACKAGE.rglob("*.py")
               for node in ast.parse(p.read_text()).body
               if isinstance(node, ast.FunctionDef) and node.name == "data_dir"]
    assert defined == [f"paths.py:{_line_of(PACKAGE / 'paths.py', 'def data_dir(')}"]


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), start=1) if line.startswith(text))


def test_the_readme_architecture_section_names_every_module() -> None:
    """README's "Architecture" names every module of the package, so a new module is placed (and explained) there."""
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    modules = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    modules += [p.name for p in (PACKAGE / "claude").glob("*.py") if p.name != "__init__.py"]
    missing = [name for name in modules if f"`{name}`" not in section and f"`claude/{name}`" not in section]
    assert not missing, f"README Architecture does not name {missing}"

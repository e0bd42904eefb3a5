"""README's "Architecture" names every module of the package, so a new module is placed (and explained) there."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_architecture_section_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    package = ROOT / "token_budget"
    modules = [p.name for p in package.glob("*.py") if p.name != "__init__.py"]
    modules += [p.name for p in (package / "claude").glob("*.py") if p.name != "__init__.py"]
    missing = [name for name in modules if f"`{name}`" not in section and f"`claude/{name}`" not in section]
    assert not missing, f"README Architecture does not name {missing}"

"""The hook process's start (claude/launch.py): run_hook.py loads it by path, and its ListingFinder finds every later
import from one listing per folder. Real hook processes show that loading stays Python's own (an edited source is
picked up, a missing or unwritable __pycache__ changes nothing but speed) and that an import system the finder does
not know keeps Python's finders; in-process, the finder's specs are compared with Python's PathFinder's."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib.machinery import BuiltinImporter, FrozenImporter, PathFinder
from pathlib import Path

import pytest
from builders import hook_payload, response, transcript_path, write_lines

from token_budget.claude import launch

ROOT = Path(__file__).resolve().parent.parent
# Appended to a module every hook imports: it says which finder found it and whether it ran from its new source.
REPORT = ("\nimport sys as _sys\n_sys.stderr.write('edited jsonlite: ' + type(_sys.meta_path[0]).__name__ + ' '"
          " + type(__spec__.loader).__name__ + '\\n')\n")


def copy_package(tmp_path: Path) -> Path:
    """A private copy of the plugin's files (sources only), so a test may edit them: the folder holding
    token_budget/ (with config/ and schemas/ beside it)."""
    parent = tmp_path / "install"
    shutil.copytree(ROOT / "token_budget", parent / "token_budget", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("config", "schemas"):
        shutil.copytree(ROOT / folder, parent / folder)
    return parent


@pytest.fixture
def transcript(claude_dir: Path) -> Path:
    return write_lines(transcript_path(claude_dir), response())


def run_hook(parent: Path, transcript: Path, *, prefix: list[str] | None = None,
             write_bytecode: bool = True) -> tuple[dict, str]:
    """A Stop hook process as Claude Code starts it (it ingests the transcript): (its answer, its stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    launcher = parent / "token_budget" / "claude" / "run_hook.py"
    proc = subprocess.run([*(prefix or [sys.executable, "-S"]), str(launcher), "Stop"],
                          input=json.dumps(hook_payload("Stop", transcript)), capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def pyc_header(source: Path) -> tuple[int, int]:
    """(source mtime, source size) as recorded in the source's .pyc."""
    data = importlib.util.cache_from_source(str(source))
    header = Path(data).read_bytes()[8:16]
    return int.from_bytes(header[:4], "little"), int.from_bytes(header[4:], "little")


def test_a_hook_finds_its_modules_with_the_listing_finder_and_picks_up_an_edited_source(tmp_path: Path,
                                                                                       transcript: Path) -> None:
    parent = copy_package(tmp_path)
    answer, err = run_hook(parent, transcript)  # compiles everything into __pycache__
    assert answer == {} and "edited" not in err
    source = parent / "token_budget" / "jsonlite.py"
    before = pyc_header(source)
    source.write_text(source.read_text() + REPORT)
    answer, err = run_hook(parent, transcript)
    assert answer == {}
    assert "edited jsonlite: ListingFinder SourceFileLoader" in err  # the new source ran, found by the finder
    stat = source.stat()
    assert pyc_header(source) == (int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size) != before  # and was recompiled


def test_a_missing_pycache_is_compiled_again_and_the_hook_answers(tmp_path: Path, transcript: Path) -> None:
    parent = copy_package(tmp_path)
    assert not list(parent.rglob("__pycache__"))
    assert run_hook(parent, transcript)[0] == {}
    assert (parent / "token_budget" / "claude" / "__pycache__").is_dir()
    cached = {p.name.split(".")[0] for p in (parent / "token_budget" / "__pycache__").iterdir()}
    assert {"__init__", "jsonlite", "errors"} <= cached
    assert run_hook(parent, transcript)[0] == {}  # and the hook runs from them


def test_a_read_only_install_runs_from_its_sources_and_writes_nothing(tmp_path: Path, transcript: Path) -> None:
    """No __pycache__ can be written (a file stands in its place, which stops root too; the folders are read-only
    for everyone else): an edited source is compiled in memory on every run."""
    parent = copy_package(tmp_path)
    package = parent / "token_budget"
    (package / "jsonlite.py").write_text((package / "jsonlite.py").read_text() + REPORT)
    for folder in (package, package / "claude"):
        (folder / "__pycache__").write_text("not a folder")
    for folder in (package, package / "claude", package / "cli", package / "team"):
        folder.chmod(0o555)
    try:
        for _ in range(2):
            answer, err = run_hook(parent, transcript)
            assert answer == {} and "edited jsonlite: ListingFinder SourceFileLoader" in err
    finally:
        for folder in (package, package / "claude", package / "cli", package / "team"):
            folder.chmod(0o755)
    assert (package / "__pycache__").read_text() == "not a folder"


def test_a_stale_pyc_is_not_used_when_bytecode_is_not_written(tmp_path: Path, transcript: Path) -> None:
    parent = copy_package(tmp_path)
    run_hook(parent, transcript)
    source = parent / "token_budget" / "jsonlite.py"
    source.write_text(source.read_text() + REPORT)
    for _ in range(2):  # the .pyc stays stale: each run compiles the source again
        answer, err = run_hook(parent, transcript, write_bytecode=False)
        assert answer == {} and "edited jsonlite: ListingFinder SourceFileLoader" in err


def test_the_plugin_route_runs_through_the_finder(tmp_path: Path, transcript: Path) -> None:
    """`sh scripts/hook.sh EVENT`, as hooks/hooks.json runs it, with the plugin's Python given."""
    parent = copy_package(tmp_path)
    shutil.copytree(ROOT / "scripts", parent / "scripts")
    source = parent / "token_budget" / "jsonlite.py"
    source.write_text(source.read_text() + REPORT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TOKEN_BUDGET_PYTHON"] = sys.executable
    proc = subprocess.run(["sh", str(parent / "scripts" / "hook.sh"), "Stop"],
                          input=json.dumps(hook_payload("Stop", transcript)), capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 0 and json.loads(proc.stdout) == {}
    assert "edited jsonlite: ListingFinder SourceFileLoader" in proc.stderr


def test_an_import_system_the_finder_does_not_know_keeps_pythons_finders(tmp_path: Path) -> None:
    """Another finder first on sys.meta_path (an import hook, an editable install's finder): install() declines,
    and the hook runs on Python's own finders."""
    parent = copy_package(tmp_path)
    source = parent / "token_budget" / "jsonlite.py"
    source.write_text(source.read_text() + REPORT)
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(
        "import runpy, sys\n"
        "class Watcher:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        return None\n"
        "sys.meta_path.insert(0, Watcher())\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    answer, err = run_hook(parent, transcript, prefix=[sys.executable, "-S", str(wrapper)])
    assert answer == {}
    assert "edited jsonlite: Watcher SourceFileLoader" in err


@pytest.fixture
def finder() -> launch.ListingFinder:
    return launch.ListingFinder()


def spec_fields(spec):  # type: ignore[no-untyped-def]
    if spec is None:
        return None
    return (spec.name, spec.origin, type(spec.loader).__name__, spec.submodule_search_locations, spec.cached,
            spec.parent, spec.has_location)


def test_every_module_of_the_package_gets_the_spec_pathfinder_gives(finder: launch.ListingFinder) -> None:
    names = ["token_budget"]
    for path in sorted((ROOT / "token_budget").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    names += ["token_budget.no_such_module", "token_budget.claude.no_such_module"]
    for name in names:
        parent = name.rpartition(".")[0]
        path = [str(ROOT / Path(*parent.split(".")))] if parent else [str(ROOT)]
        assert spec_fields(finder.find_spec(name, path)) == spec_fields(PathFinder.find_spec(name, path)), name
    assert finder.find_spec("token_budget.ledger", [str(ROOT / "token_budget")]).cached.endswith(
        f"__pycache__/ledger.{sys.implementation.cache_tag}.pyc")


def test_the_standard_librarys_modules_get_the_spec_pathfinder_gives(finder: launch.ListingFinder,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    stdlib, dynload = sysconfig.get_path("stdlib"), os.path.dirname(importlib.util.find_spec("_json").origin)
    monkeypatch.setattr(sys, "path", [str(ROOT), stdlib, dynload])
    for name in ("_json", "_sqlite3", "_datetime", "__future__", "json", "email", "no_such_module_anywhere"):
        assert spec_fields(finder.find_spec(name)) == spec_fields(PathFinder.find_spec(name)), name
    assert type(finder.find_spec("_sqlite3").loader).__name__ == "ExtensionFileLoader"
    email = finder.find_spec("email")
    for name in ("email.mime", "email.charset"):
        assert spec_fields(finder.find_spec(name, email.submodule_search_locations)) == spec_fields(
            PathFinder.find_spec(name, email.submodule_search_locations))


def test_precedence_and_what_is_not_a_module_are_pythons(finder: launch.ListingFinder, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    (first / "both").mkdir(parents=True)
    (first / "both" / "__init__.py").write_text("")
    (first / "both.py").write_text("")  # a package's folder wins over a module of the same name
    (first / "folder.py").mkdir()  # a folder named like a module is not one
    (first / "ghost.py").symlink_to(tmp_path / "missing.py")  # nor is a dangling link
    (first / "linked.py").symlink_to(first / "both.py")  # a link to a file is
    (first / "bare").write_text("")  # a file without a suffix is neither package nor module
    (second / "bare").mkdir(parents=True)
    (second / "bare" / "__init__.py").write_text("")
    (second / "folder.py").write_text("")
    (second / "ghost.py").write_text("")
    path = [str(first), str(second)]
    for name in ("both", "folder", "ghost", "linked", "bare", "missing"):
        ours = finder.find_spec(name, path)
        assert spec_fields(ours) == spec_fields(PathFinder.find_spec(name, path)), name
        assert ours is not None or name == "missing"
    assert finder.find_spec("folder", path).origin == str(second / "folder.py")


def test_what_the_finder_cannot_answer_is_left_to_pythons_finders(finder: launch.ListingFinder,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "portion").mkdir()  # a namespace package
    (tmp_path / "portion" / "inside.py").write_text("")
    archive = tmp_path / "modules.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped.py", "")
    assert finder.find_spec("portion", [str(tmp_path)]) is None
    assert PathFinder.find_spec("portion", [str(tmp_path)]).submodule_search_locations
    assert finder.find_spec("zipped", [str(archive)]) is None
    assert PathFinder.find_spec("zipped", [str(archive)]).origin.endswith("zipped.py")
    assert finder.find_spec("anything", ["relative/folder"]) is None
    assert finder.find_spec("sys") is None and finder.find_spec("os") is None  # builtin, frozen
    assert finder.find_spec("module", [str(tmp_path / "no such folder")]) is None


def test_a_listing_lasts_until_importlib_invalidates_caches(finder: launch.ListingFinder, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = [str(tmp_path)]
    assert finder.find_spec("later", path) is None
    (tmp_path / "later.py").write_text("")
    assert finder.find_spec("later", path) is None  # the folder is not asked again within the process
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    importlib.invalidate_caches()
    assert finder.find_spec("later", path).origin == str(tmp_path / "later.py")


def test_install_declines_an_import_system_other_than_pythons_default(monkeypatch: pytest.MonkeyPatch) -> None:
    default = [BuiltinImporter, FrozenImporter, PathFinder]
    hooks = [h for h in sys.path_hooks if getattr(h, "__qualname__", "").startswith(("zipimporter", "FileFinder"))]
    monkeypatch.setattr(sys, "path_hooks", hooks)
    for meta_path in ([object(), *default], default[:2]):
        monkeypatch.setattr(sys, "meta_path", list(meta_path))
        assert launch.install() is None and sys.meta_path == meta_path
    monkeypatch.setattr(sys, "meta_path", list(default))
    monkeypatch.setattr(sys, "path_hooks", [*hooks, lambda path: None])
    assert launch.install() is None
    monkeypatch.setattr(sys, "path_hooks", hooks)
    finder = launch.install()
    assert isinstance(finder, launch.ListingFinder) and sys.meta_path == [finder, *default]

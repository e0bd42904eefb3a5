"""lean_path gives what os.path gives (the guard's protected paths rest on it), on trees of links and odd spellings."""

from __future__ import annotations

import os
import posixpath
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from token_budget import lean_path

NAMES = ["a", "b", "c", "link", "loop", "up", "abs", "file", "missing"]
STEPS = st.lists(st.sampled_from([*NAMES, ".", "..", ""]), max_size=7)


def _tree(root: Path) -> None:
    """Folders, a file, and links of every kind: relative, absolute, to a missing target, up, and in a loop."""
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "file").write_text("x")
    (root / "a" / "link").symlink_to("b")
    (root / "a" / "b" / "up").symlink_to("../..")
    (root / "a" / "b" / "abs").symlink_to(root / "a" / "b" / "c")
    (root / "a" / "b" / "c" / "missing").symlink_to("nowhere/at/all")
    (root / "a" / "loop").symlink_to("loop2")
    (root / "a" / "loop2").symlink_to("loop")
    (root / "link").symlink_to("a/link")


@given(steps=STEPS, trailing=st.booleans(), doubled=st.booleans())
@settings(max_examples=300, deadline=None)
def test_realpath_is_os_path_realpath(tmp_path_factory, steps: list[str], trailing: bool, doubled: bool) -> None:
    root = tmp_path_factory.getbasetemp() / "lean-tree"
    if not root.exists():
        root.mkdir()
        _tree(root)
    path = str(root) + ("//" if doubled else "/") + "/".join(steps) + ("/" if trailing else "")
    assert lean_path.realpath(path) == os.path.realpath(path), path


@given(st.lists(st.sampled_from(["", "/", "//", "a", "b", ".", "..", "a/"]), min_size=1, max_size=5))
def test_dirname_join_and_normpath_are_os_paths(parts: list[str]) -> None:
    path = "".join(parts)
    assert lean_path.dirname(path) == posixpath.dirname(path)
    assert lean_path.join(*parts) == posixpath.join(*parts)
    if path.startswith("/"):
        assert lean_path.normpath(path) == posixpath.normpath(path)


def test_isdir_and_home_and_getenv(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "f").write_text("")
    assert lean_path.isdir(str(tmp_path)) and not lean_path.isdir(str(tmp_path / "f"))
    assert not lean_path.isdir(str(tmp_path / "none")) and not lean_path.isdir("bad\x00path")
    for value in ("/home/u", "/home/u/", "/", ""):
        monkeypatch.setenv("HOME", value)
        assert lean_path.home() == os.path.expanduser("~")
    monkeypatch.setenv("TB_LEAN_\u00e9", "caf\u00e9")
    assert lean_path.getenv("TB_LEAN_\u00e9") == "caf\u00e9" and lean_path.getenv("TB_LEAN_NONE") is None


def test_a_relative_path_is_resolved_by_os_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").symlink_to(".")
    assert lean_path.realpath("x/x/..") == os.path.realpath("x/x/..")


def test_the_guard_checks_a_bash_command_naming_paths_without_os(tmp_path: Path) -> None:
    """The idle hook's guard (a Bash command holding a "/") loads neither os nor posixpath."""
    code = ("import sys; from token_budget.claude import guard; "
            f"print(guard.blocked_call('Bash', {{'command': 'ls -la src/ /tmp'}}, {str(tmp_path)!r}, '/tmp/proj', '',"
            " []), 'os' in sys.modules, 'posixpath' in sys.modules)")
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, {root!r}); {code}"],
                         capture_output=True, text=True, check=True, env={"HOME": str(tmp_path)}).stdout
    loaded = str(sys.version_info >= (3, 13))  # there os.path resolves (lean_path.realpath says why)
    assert out.split() == ["None", loaded, loaded]

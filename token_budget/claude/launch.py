"""The hook process's start: the package first on sys.path, its imports found from one listing per folder.

run_hook.py, the script the hooks' command names, only loads this module by its path: Python compiles a script's
source on every run (the launcher's own code cost a hook about as much as five of its modules' imports), while a
module's compiled code is kept in __pycache__. `main` then does what the launcher did: the package's parent first on
sys.path, fastpath.start (the idle answer), else hook.run_watched.

Before any of the package's modules loads, `main` puts a `ListingFinder` first on sys.meta_path. Python's path
finder asks the file system again for every module it imports: a stat of each folder on the search path (to see
whether its cached listing is still current), of every candidate file, of each package's `__init__` for every kind
of module it could be, before the loader stats the source once more. A hook imports about thirty of the package's
modules and a few extension modules of the standard library (`_json`, `_datetime`, `_sqlite3`, in the last folder of
sys.path), and lives a few milliseconds in which none of those folders changes. ListingFinder lists each folder once
and answers from the listings what Python's `PathFinder` and `FileFinder` would: the same search order (sys.path,
or the parent package's `__path__`), the same precedence (a package's folder, then extension modules, source,
bytecode; only regular files count) and the same spec, with the standard loaders. Loading is therefore Python's
own: the `.pyc` is checked against the source's mtime and size, rewritten when stale or missing, and left alone in a
read-only install. A package's folder is listed with `scandir`, which tells files from folders without a stat per
module; a folder on sys.path (site-packages can be large, and few of its names are wanted) with `listdir`, and a
name found there is then checked to be a file, as FileFinder does.

Whatever it cannot answer exactly as Python would goes to Python's finders (find_spec returns None): a builtin or
frozen module, a search path entry that is relative or a file (a zip), a namespace package, path hooks other than
Python's own, case-insensitive matching (PYTHONCASEOK). A folder that already has an entry in
sys.path_importer_cache (the standard library's, listed by Python at start-up) is asked through that entry, as
PathFinder would. `importlib.invalidate_caches()` forgets the listings. The finder is for this short-lived process
only: a folder that gains a module while it runs is not seen again until then.
"""

# No `from __future__ import annotations` here: it would import `__future__` before this finder is in place.
import _frozen_importlib as _bootstrap  # the import system behind importlib.machinery: loaded in every process
import _frozen_importlib_external as _external
import _imp
import sys
from posix import listdir, scandir, stat

TYPE_CHECKING = False  # typing is not loaded in a hook
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

_SKIP = object()  # a search path entry Python's finders skip: missing, or None in sys.path_importer_cache
_FILE = object()  # a search path entry that is a file (a zip?): Python's path hooks decide
_S_IFMT, _S_IFREG = 0o170000, 0o100000


class ListingFinder:
    """A meta path finder equivalent to Python's PathFinder, over folders listed once."""

    def __init__(self) -> "None":
        self._loaders = [(suffix, loader) for loader, suffixes in _external._get_supported_file_loaders()
                         for suffix in suffixes]
        self._hooks = list(sys.path_hooks)
        # The spec's `cached` (the module's __cached__) is the source's stem + this tail, in its folder's __pycache__
        pyc = _external.cache_from_source("/x/_.py")
        self._pyc_tail = pyc[len("/x/__pycache__/_"):] if pyc.startswith("/x/__pycache__/_.") else ""
        # folder -> (names, names of its regular files, or None: not known), _SKIP, _FILE, or a path entry finder
        self._folders: dict[str, Any] = {}

    def invalidate_caches(self) -> "None":
        self._folders.clear()

    def find_spec(self, fullname: "str", path: "Sequence[str] | None" = None, target: "object" = None) -> "Any":
        """The spec PathFinder would return, or None: not found, or not this finder's to say."""
        if _imp.is_builtin(fullname) or _imp.is_frozen(fullname) or sys.path_hooks != self._hooks:
            return None  # BuiltinImporter, FrozenImporter or another path hook decides
        tail = fullname.rpartition(".")[2]
        for folder in sys.path if path is None else path:
            listing = self._listing(folder, path is not None) if isinstance(folder, str) else _SKIP
            if listing is _SKIP:
                continue
            if listing is None or listing is _FILE:
                return None
            if type(listing) is not tuple:  # a finder from sys.path_importer_cache: ask it, as PathFinder would
                spec = listing.find_spec(fullname, target) if hasattr(listing, "find_spec") else None
                if spec is None:
                    continue
                return spec if spec.loader is not None else None  # a namespace portion: PathFinder's business
            if tail in listing[0]:  # a folder (a package), or a file named without a suffix
                base = _join(folder, tail)
                inner = self._listing(base, True)
                if type(inner) is tuple:
                    for suffix, loader in self._loaders:
                        if _holds_file(inner, base, "__init__" + suffix):
                            return self._spec(fullname, loader, base, "__init__" + suffix, [base])
                    return None  # a namespace package
                if inner is not _SKIP and inner is not _FILE:
                    return None
            for suffix, loader in self._loaders:
                if _holds_file(listing, folder, tail + suffix):
                    return self._spec(fullname, loader, folder, tail + suffix, None)
        return None

    def _spec(self, fullname: "str", loader: "Any", folder: "str", name: "str", package: "list[str] | None") -> "Any":
        """What FileFinder returns, with `cached` (the module's __cached__) spelled without a second computation."""
        location = _join(folder, name)
        spec = _external.spec_from_file_location(fullname, location, loader=loader(fullname, location),
                                                 submodule_search_locations=package)
        if loader is _external.SourceFileLoader and self._pyc_tail and sys.pycache_prefix is None:
            spec.cached = _join(folder, "__pycache__/") + name.rpartition(".")[0] + self._pyc_tail
        return spec

    def _listing(self, folder: "str", typed: "bool") -> "Any":
        """The listing of a search path entry, taken on first use (see ListingFinder._folders); None: not ours."""
        listing = self._folders.get(folder)
        if listing is None:
            listing = self._folders[folder] = _list(folder, typed)
        return listing


def _list(folder: "str", typed: "bool") -> "Any":
    if folder in sys.path_importer_cache:
        finder = sys.path_importer_cache[folder]
        names = getattr(finder, "_path_cache", None)
        if type(finder) is _external.FileFinder and getattr(finder, "_path_mtime", -1) != -1 and names is not None:
            return names, None  # the listing Python took of it in this process (the standard library's, at start-up)
        return finder or _SKIP
    if not folder.startswith("/"):
        return None  # relative to the working directory, which may change: PathFinder's business
    try:
        if not typed:
            return frozenset(listdir(folder)), None
        names, files = set(), set()
        with scandir(folder) as entries:
            for entry in entries:
                names.add(entry.name)
                if entry.is_file():
                    files.add(entry.name)
        return names, files
    except FileNotFoundError:
        return _SKIP
    except NotADirectoryError:
        return _FILE
    except PermissionError:
        return frozenset(), frozenset()  # FileFinder lists an unreadable folder as empty
    except OSError:
        return None


def _holds_file(listing: "tuple[Any, Any]", folder: "str", name: "str") -> "bool":
    """Whether the listed folder holds a regular file (or a link to one) of that name, as FileFinder's isfile."""
    names, files = listing
    if files is not None:
        return name in files
    if name not in names:
        return False
    try:
        return stat(_join(folder, name)).st_mode & _S_IFMT == _S_IFREG
    except OSError:
        return False


def _join(folder: "str", name: "str") -> "str":
    return folder.rstrip("/") + "/" + name


def install() -> "ListingFinder | None":
    """Put a ListingFinder first on sys.meta_path, when the import system is Python's default one; else None."""
    hooks = [getattr(hook, "__qualname__", "") for hook in sys.path_hooks]
    if (sys.meta_path != [_bootstrap.BuiltinImporter, _bootstrap.FrozenImporter, _external.PathFinder]
            or len(hooks) != 2 or hooks[0] != "zipimporter" or not hooks[1].startswith("FileFinder.path_hook.")
            or _external._relax_case()):
        return None
    finder = ListingFinder()
    sys.meta_path.insert(0, finder)
    return finder


def main() -> "None":
    """The hook process, from run_hook.py: answers the event on stdout and ends the process."""
    sys.path[0] = _package_parent(__file__)  # run_hook.py's folder, first on sys.path, would shadow the stdlib
    try:
        install()
    except Exception:  # an import system unlike the one install() checks for: its own finders do the work
        pass
    from io import StringIO

    from token_budget.claude.fastpath import finish, start

    argv, payload, seconds, tried = start()  # returns only when the record cannot answer
    from token_budget.claude.hook import run_watched

    finish(run_watched(argv, StringIO(payload), seconds, tried=tried, exits=True))


def _package_parent(here: "str") -> "str":
    """The folder holding token_budget/, three names up from this file: string operations when the path is plain,
    os.path (an import) when it is not."""
    if here.startswith("/") and "/./" not in here and "/../" not in here:
        for _ in range(3):
            here = here.rstrip("/").rpartition("/")[0]
        return here or "/"
    import os

    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(here))))

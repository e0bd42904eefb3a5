"""Launcher for hooks: `python -S …/token_budget/claude/run_hook.py EVENT`.

Run as a script so the interpreter can start with -S (no site-packages scan, the largest fixed cost of a Python
start); the hot path needs only the standard library and this package, whose parent folder goes first on sys.path.
The process starts in fastpath.start, which imports neither os nor anything it does not use when the session's
record answers (see fastpath.py); only when it cannot does the full path (hook.py) load.
"""

if __name__ == "__main__":
    import sys

    # sys.path[0] is this file's folder, whose module names would shadow the standard library's. Its package's
    # parent is three names up: string operations when the path is plain, os.path (an import) when it is not.
    here = __file__
    if here.startswith("/") and "/./" not in here and "/../" not in here:
        root = here
        for _ in range(3):
            root = root.rstrip("/").rpartition("/")[0]
        sys.path[0] = root or "/"
    else:
        import os

        sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(here))))
    from io import StringIO

    from token_budget.claude.fastpath import finish, start

    argv, payload, seconds, tried = start()  # returns only when the record cannot answer
    from token_budget.claude.hook import run_watched

    finish(run_watched(argv, StringIO(payload), seconds, tried=tried))

"""Launcher for hooks: `python -S …/token_budget/claude/run_hook.py EVENT`.

Run as a script so the interpreter can start with -S (no site-packages scan, the largest fixed cost of a Python
start); the hot path needs only the standard library and this package, whose parent folder goes first on sys.path.
"""

if __name__ == "__main__":
    import os
    import sys

    # sys.path[0] is this file's folder, whose module names would shadow the standard library's.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from token_budget.claude.hook import main

    main()

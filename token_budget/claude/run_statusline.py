"""Launcher for the status line: `python -S …/token_budget/claude/run_statusline.py [--data-dir DIR]`.

Like run_hook.py: started with -S (no site-packages scan) and the package's parent folder first on sys.path.
Claude Code runs it after every assistant message, so it must stay within a few milliseconds of bare start-up.
"""

if __name__ == "__main__":
    import gc
    import os
    import sys

    gc.disable()  # as the hook (fastpath.start): a process of milliseconds makes no cycles worth collecting
    # sys.path[0] is this file's folder, whose module names would shadow the standard library's.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from token_budget.claude.statusline import main

    code = main()  # writes and flushes its line, closes the ledger
    os._exit(code)  # without the interpreter's teardown: about a tenth of a bare start

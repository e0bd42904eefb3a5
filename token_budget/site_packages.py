"""Hooks start Python with -S (no site-packages scan, the largest fixed cost of a start). The few paths that need
a third-party package (PyYAML and jsonschema for a cold config cache, filelock for the daily report) load site
first, and only then."""

from __future__ import annotations

import sys


def enable() -> None:
    if sys.flags.no_site and "site" not in sys.modules:
        import site

        site.main()

"""lean_datetime: the hot path's date and time classes are datetime's own C classes, loaded without datetime.py."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

from token_budget import lean_datetime

ROOT = Path(__file__).resolve().parent.parent
FRESH = """
import sys
sys.path.insert(0, sys.argv[1])
from token_budget import clock, periods
loaded = sorted({"datetime", "math", "operator"} & set(sys.modules))
moment = clock.now()
bounds = periods.day_bounds(periods.today(periods.zone("UTC"), moment), periods.zone("UTC"))
import datetime
print(loaded, type(moment) is datetime.datetime, moment.tzinfo is datetime.timezone.utc, bounds[0] < bounds[1])
"""


def test_its_classes_are_the_datetime_modules_classes() -> None:
    for name in lean_datetime.__all__:
        assert getattr(lean_datetime, name) is getattr(datetime, name)


def test_the_clock_and_periods_load_without_the_datetime_module() -> None:
    out = subprocess.run([sys.executable, "-S", "-c", FRESH, str(ROOT)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True", "True", "True"]

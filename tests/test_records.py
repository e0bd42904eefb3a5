"""`@record` (token_budget/_records.py): the generic __init__ a class starts with and the compiled one it gets after
COMPILE_AFTER instances build the same instances and refuse the same calls."""

from __future__ import annotations

import pytest

from token_budget._records import COMPILE_AFTER, as_dict, factory, record


def make_class() -> type:
    @record(frozen=False)
    class Row:
        name: str
        size: int = 3
        tags: list[str] = factory(list)
        note: str | None = None

    return Row


CALLS = [
    (("a",), {}),
    (("a", 5), {}),
    (("a", 5, ["x"], "n"), {}),
    (("a",), {"note": "n"}),
    ((), {"name": "a", "tags": ["t"]}),
    (("a",), {"size": 1, "tags": ["t"], "note": None}),
]
REFUSED = [
    ((), {}),  # name missing
    (("a", 1, [], None, "extra"), {}),  # too many
    (("a",), {"name": "b"}),  # name twice
    (("a",), {"colour": "red"}),  # no such field
]


def instances(cls: type) -> list[dict]:
    return [as_dict(cls(*args, **kwargs)) | {"order": list(vars(cls(*args, **kwargs)))} for args, kwargs in CALLS]


def refusals(cls: type) -> list[bool]:
    out = []
    for args, kwargs in REFUSED:
        with pytest.raises(TypeError):
            cls(*args, **kwargs)
        out.append(True)
    return out


def test_the_generic_and_the_compiled_init_agree() -> None:
    cls = make_class()
    generic_init = cls.__init__
    early = instances(cls)
    assert refusals(cls) == [True] * len(REFUSED)
    for _ in range(COMPILE_AFTER):
        cls("warm")
    assert cls.__init__ is not generic_init, "the class should have its compiled __init__ by now"
    assert instances(cls) == early
    assert refusals(cls) == [True] * len(REFUSED)
    assert early[0] == {"name": "a", "size": 3, "tags": [], "note": None, "order": ["name", "size", "tags", "note"]}


def test_each_instance_gets_its_own_factory_default() -> None:
    cls = make_class()
    for _ in range(COMPILE_AFTER + 2):  # through both inits
        first, second = cls("a"), cls("b")
        first.tags.append("x")
        assert second.tags == []


def test_a_frozen_record_stays_frozen_under_either_init() -> None:
    @record
    class Point:
        x: int
        y: int = 0

    for _ in range(COMPILE_AFTER + 1):
        p = Point(1)
        with pytest.raises(AttributeError):
            p.x = 2  # type: ignore[misc]
    assert hash(Point(1, 2)) == hash(Point(1, y=2))

"""`@record`: a lean stand-in for `@dataclass` on the hook's hot path.

`dataclasses` imports `inspect`, and with it ast, dis and tokenize: measured at about a fifth of a hook's start-up
here. `record` keeps only what this package uses: fields from the class annotations, defaults and default
factories, positional or keyword construction, repr, equality, hashing and frozen instances. Modules off the hot
path (reports, alerts delivery, the CLI) keep using dataclasses.
"""

from __future__ import annotations

_MISSING = object()


class factory:  # noqa: N801  (used like dataclasses.field(default_factory=…))
    """A default made fresh for each instance: `errors: list[str] = factory(list)`."""

    __slots__ = ("make",)

    def __init__(self, make: object) -> None:
        self.make = make


def record(cls: type | None = None, /, *, frozen: bool = True):  # type: ignore[no-untyped-def]
    def build(cls: type) -> type:
        names = tuple(cls.__dict__.get("__annotations__", {}))
        namespace: dict[str, object] = {"_MISSING": _MISSING}
        params, body = [], []
        for name in names:
            default = cls.__dict__.get(name, _MISSING)
            if isinstance(default, factory):
                namespace[f"_make_{name}"] = default.make
                params.append(f"{name}=_MISSING")
                body.append(f" _d[{name!r}] = _make_{name}() if {name} is _MISSING else {name}")
                delattr(cls, name)
            else:
                if default is not _MISSING:
                    namespace[f"_default_{name}"] = default
                params.append(name if default is _MISSING else f"{name}=_default_{name}")
                body.append(f" _d[{name!r}] = {name}")
        # Writes go straight to the instance dict: object.__setattr__ per field made a UsageEvent 3x slower to build.
        body.insert(0, " _d = self.__dict__")
        exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body), namespace)  # noqa: S102
        cls.__init__ = namespace["__init__"]  # type: ignore[misc]
        cls.__record_fields__ = names  # type: ignore[attr-defined]
        cls.__repr__ = _repr  # type: ignore[method-assign]
        cls.__eq__ = _eq  # type: ignore[method-assign]
        if frozen:
            cls.__hash__ = _hash  # type: ignore[method-assign]
            cls.__setattr__ = _refuse  # type: ignore[method-assign]
            cls.__delattr__ = _refuse  # type: ignore[method-assign]
        else:
            cls.__hash__ = None  # type: ignore[assignment]
        return cls

    return build if cls is None else build(cls)


def fields(obj: object) -> tuple[str, ...]:
    return obj.__record_fields__  # type: ignore[attr-defined,no-any-return]


def as_tuple(obj: object) -> tuple[object, ...]:
    return tuple(getattr(obj, name) for name in fields(obj))


def as_dict(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in fields(obj)}


def replace(obj: object, **changes: object) -> object:
    return type(obj)(**{**as_dict(obj), **changes})


def _repr(self: object) -> str:
    return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in fields(self))})"


def _eq(self: object, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return as_tuple(self) == as_tuple(other)


def _hash(self: object) -> int:
    return hash(as_tuple(self))


def _refuse(self: object, name: str, *args: object) -> None:
    raise AttributeError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")

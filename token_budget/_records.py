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


# Instances of one class after which it gets its compiled __init__. Compiling one (exec) costs about 0.25 ms, and
# a hook process imports 14 records to build a handful of instances each: they use the generic __init__, which is
# about half as fast per instance. A loop that builds many (`tokens import`: one UsageEvent per usage line) swaps
# in the compiled one after COMPILE_AFTER instances.
COMPILE_AFTER = 64


def record(cls: type | None = None, /, *, frozen: bool = True):  # type: ignore[no-untyped-def]
    def build(cls: type) -> type:
        names = tuple(cls.__dict__.get("__annotations__", {}))
        defaults: dict[str, object] = {}
        factories: dict[str, object] = {}
        for name in names:
            default = cls.__dict__.get(name, _MISSING)
            if isinstance(default, factory):
                factories[name] = default.make
                delattr(cls, name)
            elif default is not _MISSING:
                defaults[name] = default
        cls.__init__ = _generic_init(cls, names, defaults, factories)  # type: ignore[misc]
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


def _generic_init(cls: type, names: tuple[str, ...], defaults: dict[str, object],
                  factories: dict[str, object]):  # type: ignore[no-untyped-def]
    """An __init__ for any fields, and after COMPILE_AFTER instances the class's compiled one. Both fill the
    instance dict in field order and refuse what a def would refuse (too many, unknown, repeated or missing
    arguments) with a TypeError."""
    count = len(names)
    made = 0

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal made
        made += 1
        if made == COMPILE_AFTER:
            cls.__init__ = _compiled_init(names, defaults, factories)  # type: ignore[misc]
        given = len(args)
        d = self.__dict__
        if given == count and not kwargs:
            d.update(zip(names, args, strict=True))
            return
        if given > count:
            raise TypeError(f"{cls.__name__}() takes {count} arguments but {given} were given")
        for name in kwargs:
            if name not in names[given:]:
                raise TypeError(f"{cls.__name__}() got an unexpected or repeated argument {name!r}")
        for i, name in enumerate(names):
            if i < given:
                d[name] = args[i]
            elif name in kwargs:
                d[name] = kwargs[name]
            elif name in factories:
                d[name] = factories[name]()  # type: ignore[operator]
            elif name in defaults:
                d[name] = defaults[name]
            else:
                raise TypeError(f"{cls.__name__}() missing the argument {name!r}")

    return __init__


def _compiled_init(names: tuple[str, ...], defaults: dict[str, object],
                   factories: dict[str, object]):  # type: ignore[no-untyped-def]
    namespace: dict[str, object] = {"_MISSING": _MISSING}
    params, body = [], []
    for name in names:
        if name in factories:
            namespace[f"_make_{name}"] = factories[name]
            params.append(f"{name}=_MISSING")
            body.append(f" _d[{name!r}] = _make_{name}() if {name} is _MISSING else {name}")
        else:
            if name in defaults:
                namespace[f"_default_{name}"] = defaults[name]
            params.append(f"{name}=_default_{name}" if name in defaults else name)
            body.append(f" _d[{name!r}] = {name}")
    # Writes go straight to the instance dict: object.__setattr__ per field made a UsageEvent 3x slower to build.
    body.insert(0, " _d = self.__dict__")
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body), namespace)  # noqa: S102
    return namespace["__init__"]


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

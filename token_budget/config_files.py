"""The config files read and checked: bounded YAML without aliases, the JSON schema with the file, line and key of
each error, the repository layer's trust rules, and webhooks scrubbed out of what the cache keeps.

Not for the hot path: a hook takes the compiled cache (config.load_cached) and loads this module only when a
config file changed since the cache was written (config.load), or to save an override.
"""

from __future__ import annotations

import os

from . import jsonlite
from .errors import ConfigError
from .paths import CONFIG_NAME, file_stamp, packaged_config_dir, packaged_schemas_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

MAX_CONFIG_BYTES = 256 << 10  # a config file is a few kilobytes; anything this large is not one
MAX_YAML_NODES = 20_000  # scalars, sequences and mappings in one file
MAX_YAML_DEPTH = 32


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings; anything else (lists included) in `over` replaces what `base` had."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def trusted_layer(path: Path) -> dict[str, Any] | None:
    """A layer of the user's (or the packaged defaults), validated: an error names the file."""
    def read(path: Path) -> dict[str, Any] | None:
        layer = read_layer(path, follow=path.suffix != ".json")
        if layer is not None:
            validate(layer, path)
            _check_timezone(layer.get("timezone", "local"), path)  # the error names the file that set it
        return layer

    return packaged(path, read) if str(path).startswith(packaged_config_dir()) else read(path)


_PACKAGED: dict[str, tuple[Any, Any]] = {}


def packaged(path: Path, read: Any, *, copy: bool = True) -> Any:
    """A packaged file, parsed (and checked) once per process while it is unchanged: `tokens` commands and the
    sender load the config more than once. `copy=False` for data no caller modifies (the price table copies it)."""
    stamp = file_stamp(str(path))
    known = _PACKAGED.get(str(path))
    if known is None or known[0] != stamp:
        known = _PACKAGED[str(path)] = (stamp, read(path))
    if not copy:
        return known[1]
    import copy as copying

    return copying.deepcopy(known[1])


def project_layer(path: Path, project_dir: Any, merged: dict[str, Any], notices: list[str]) -> dict[str, Any] | None:
    """The part of the repository's file that may apply, or None. Never raises for what the file holds."""
    from .trust import is_trusted, restrict

    try:
        layer = read_layer(path, follow=False)
        if layer is None:
            return None
        validate(layer, path)
        _check_timezone(layer.get("timezone", "local"), path)
    except ConfigError as exc:
        notices.append(f"{path} was ignored: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        return None
    if is_trusted(os.fspath(project_dir), merged):
        if "team" in layer:  # which team server this machine reports to is the user's choice alone, trusted or not
            notices.append(f"{path}: team is ignored (only your own token_budgets.yaml can join a team).")
            layer = {key: value for key, value in layer.items() if key != "team"}
        return layer
    accepted, ignored = restrict(merged, layer)
    if ignored:
        notices.append(f"{path} can only tighten your budgets; ignored: {', '.join(ignored)}. To trust it, add "
                       f"{os.path.realpath(project_dir)} to trusted_projects in your own token_budgets.yaml.")
    return accepted


def read_layer(path: Path, *, follow: bool = True) -> dict[str, Any] | None:
    if not os.path.lexists(path):
        return None
    raw = _read_bounded(path, follow=follow)
    data = jsonlite.loads(raw) if path.suffix == ".json" else _parse_yaml(raw, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the file must hold a mapping of settings, not a {type(data).__name__}.",
                          f"Start from the packaged example: {os.path.join(packaged_config_dir(), CONFIG_NAME)}")
    return _without_retired(data)


# Settings earlier versions accepted although nothing read them: a file that still has them loads (the schema
# refuses unknown keys), and they are dropped here so they cannot look as if they did something.
RETIRED_SETTINGS = (("optimizations", "caching", "cache_embeddings"),
                    ("optimizations", "context_compression", "method"))


def _without_retired(data: dict[str, Any]) -> dict[str, Any]:
    for *parents, key in RETIRED_SETTINGS:
        node: Any = data
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(key, None)
    return data


def _read_bounded(path: Path, *, follow: bool = True) -> bytes:
    """A regular file's bytes, capped: a link to /dev/zero or a FIFO planted as a config file is refused at once."""
    from .paths import UnsafeFileError, read_regular

    try:
        return read_regular(path, MAX_CONFIG_BYTES, follow=follow)
    except UnsafeFileError as exc:
        raise ConfigError(exc.message, exc.hint) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}).", "Check the file's permissions.") from exc


def read_yaml(path: Path) -> Any:
    return _parse_yaml(_read_bounded(path), path)


def _parse_yaml(raw: bytes, path: Path) -> Any:
    """Safe YAML with no aliases and a bounded number and depth of nodes: a few hundred bytes of nested aliases
    (a "billion laughs") would otherwise expand to gigabytes."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when PyYAML has it: 5x faster, same subset
    try:
        text = raw.decode("utf-8")
        nodes = depth = 0
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                raise ConfigError(f"{path}:{mark.line + 1}: YAML aliases (*{event.anchor}) are not allowed.",
                                  "Write the value out instead of referring to an anchor.")
            if isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
                nodes += 1
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if nodes > MAX_YAML_NODES or depth > MAX_YAML_DEPTH:
                raise ConfigError(f"{path}: more than {MAX_YAML_NODES:,} values or {MAX_YAML_DEPTH} levels of "
                                  "nesting; refusing to read it.", "A config file is a few kilobytes.")
        return yaml.load(text, Loader=loader)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason}).", "Save the file as UTF-8.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)}).",
                          "Fix the syntax at that line.") from exc


def _schema() -> dict[str, Any]:
    with open(os.path.join(packaged_schemas_dir(), "token_budgets.schema.json"), "rb") as handle:
        return jsonlite.loads(handle.read())  # type: ignore[no-any-return]


_VALIDATOR: list[Any] = []


def _validator() -> Any:
    if not _VALIDATOR:
        import jsonschema

        _VALIDATOR.append(jsonschema.Draft202012Validator(_schema()))
    return _VALIDATOR[0]


def validate(data: dict[str, Any], path: Path) -> None:
    """Raise ConfigError naming the file, line and key of the first problem, and what is expected there."""
    validator = _validator()
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    import jsonschema

    error = jsonschema.exceptions.best_match(errors)
    keys = [str(k) for k in error.absolute_path]
    line = _line_of(path, list(error.absolute_path))
    where = f"{path}:{line}" if line else str(path)
    key = ".".join(keys) or "(top level)"
    raise ConfigError(f"{where}: {key}: {_describe(error)}", _expected(error))


def _describe(error: Any) -> str:
    if error.validator == "additionalProperties":
        return f"unknown setting ({error.message.split('(')[-1].rstrip(')')})"
    return f"{error.instance!r} is not valid"


def _expected(error: Any) -> str:
    schema = error.schema
    desc = schema.get("description")
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(schema.get("properties", {})))
        return f"Expected one of: {allowed}."
    if "enum" in schema:
        return "Expected one of: " + ", ".join(map(str, schema["enum"])) + "."
    if desc:
        return f"Expected {desc}."
    if "type" in schema:
        extra = f" >= {schema['minimum']}" if "minimum" in schema else ""
        return f"Expected {'an' if schema['type'][0] in 'aeiou' else 'a'} {schema['type']}{extra}."
    return error.message


def _line_of(path: Path, keys: list[Any]) -> int | None:
    if path.suffix != ".yaml" or not path.exists():
        return None
    import yaml

    try:
        node = yaml.compose(_read_bounded(path).decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, ConfigError, UnicodeDecodeError):
        return None
    line = None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _check_timezone(name: str, path: Any) -> None:
    if name == "local":
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{path}: timezone: {name!r} is not a known IANA zone.",
                          "Use a name such as Europe/Paris or America/New_York, or local.") from exc


LITERAL_WEBHOOK = "(a literal webhook URL, read from the config file when sending)"
VARIABLE_PATTERN = r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))"  # $NAME or ${NAME}


def is_reference(value: str) -> bool:
    """True when the value is exactly one `$VAR` / `${VAR}` reference."""
    import re  # only a config with channels pays for it

    return re.fullmatch(VARIABLE_PATTERN, value.strip()) is not None


def scrub_webhooks(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """`data` with every literal webhook URL replaced by LITERAL_WEBHOOK ($VARIABLE references stay)."""
    chans = (data.get("alerts") or {}).get("channels") or []
    if not any(isinstance(c, dict) and c.get("webhook") and not is_reference(c["webhook"]) for c in chans):
        return data, False
    clean = [{**c, "webhook": LITERAL_WEBHOOK} if isinstance(c, dict) and c.get("webhook") and
             not is_reference(c["webhook"]) else c for c in chans]
    return {**data, "alerts": {**data["alerts"], "channels": clean}}, True

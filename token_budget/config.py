"""Find, layer and validate the configuration; keep a compiled JSON copy so hooks never parse YAML.

Layers, later wins: packaged config/token_budgets.yaml < user $XDG_CONFIG_HOME/token-budget/token_budgets.yaml
< <project>/.claude/token_budgets.yaml < changes made with `tokens budget` / `tokens mode` (overrides.json in the
data dir). $TOKEN_BUDGET_CONFIG (or --config) replaces the user and project layers with that one file.

The hot path calls `load_cached()`: one stat per source file and one json.load. Only when a source changed does it
import yaml and jsonschema, validate, and rewrite the cache.
"""

from __future__ import annotations

import os
import zlib

from . import jsonlite
from ._records import factory, record
from .errors import ConfigError
from .paths import packaged_config_dir, packaged_schemas_dir, write_atomically

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from .paths import PathLike

CONFIG_NAME = "token_budgets.yaml"
PRICING_NAME = "pricing.yaml"
OVERRIDES_NAME = "overrides.json"
CACHE_VERSION = 1


@record(frozen=False)
class Config:
    """The merged, validated configuration plus the price data it was compiled with."""

    data: dict[str, Any]
    pricing: dict[str, Any] = factory(dict)
    sources: list[str] = factory(list)

    def get(self, *keys: str, default: Any = None) -> Any:
        node: Any = self.data
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node

    @property
    def timezone(self) -> str:
        return self.get("timezone", default="local")

    @property
    def counted_classes(self) -> tuple[str, ...]:
        return tuple(self.get("counted_token_classes", default=("input", "output", "cache_creation")))

    def price_table(self) -> Any:
        from .pricing import PriceTable, merge_overrides

        return PriceTable.from_dict(merge_overrides(self.pricing, self.get("pricing", default={}) or {}))

    @property
    def prices(self) -> LazyPrices:
        """Prices built on first use: a hook with nothing new to record never pays for the table."""
        return LazyPrices(self)


class LazyPrices:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._table: Any = None

    def cost(self, event: Any) -> Any:
        if self._table is None:
            self._table = self._config.price_table()
        return self._table.cost(event)


def layer_paths(project_dir: PathLike | None = None, explicit: str | None = None,
                data_dir: PathLike | None = None) -> list[str]:
    """The config files that apply, lowest precedence first (missing optional layers included; they are skipped)."""
    layers = [os.path.join(packaged_config_dir(), CONFIG_NAME)]
    explicit = explicit or os.environ.get("TOKEN_BUDGET_CONFIG")
    if explicit:
        layers.append(os.path.normpath(os.path.expanduser(explicit)))
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        layers.append(os.path.join(xdg, "token-budget", CONFIG_NAME))
        if project_dir:
            layers.append(os.path.join(project_dir, ".claude", CONFIG_NAME))
    if data_dir is not None:
        layers.append(os.path.join(data_dir, OVERRIDES_NAME))
    return layers


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings; anything else (lists included) in `over` replaces what `base` had."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load(project_dir: PathLike | None = None, *, explicit: str | None = None,
         data_dir: PathLike | None = None) -> Config:
    """Parse and validate every layer (YAML + jsonschema: not for the hot path; see load_cached)."""
    from pathlib import Path

    explicit = explicit or os.environ.get("TOKEN_BUDGET_CONFIG")
    if explicit and not os.path.isfile(os.path.expanduser(explicit)):
        raise ConfigError(f"The config file {explicit} does not exist.",
                          "Fix the path given by --config or TOKEN_BUDGET_CONFIG, or unset it.")
    merged: dict[str, Any] = {}
    used: list[str] = []
    for path in map(Path, layer_paths(project_dir, explicit, data_dir)):
        layer = _read_layer(path)
        if layer is None:
            continue
        validate(layer, path)
        merged = merge(merged, layer)
        used.append(str(path))
    validate(merged, Path(used[-1]) if used else Path(CONFIG_NAME))
    _check_timezone(merged.get("timezone", "local"), used)
    pricing_path = Path(packaged_config_dir(), PRICING_NAME)
    pricing = _read_yaml(pricing_path) if pricing_path.exists() else {}
    return Config(merged, pricing or {}, used)


def _read_layer(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data = jsonlite.loads(path.read_bytes()) if path.suffix == ".json" else _read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the file must hold a mapping of settings, not a {type(data).__name__}.",
                          f"Start from the packaged example: {os.path.join(packaged_config_dir(), CONFIG_NAME)}")
    return data


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        # libyaml's loader when PyYAML has it: the same safe subset, parsed 5x faster on a cold config cache.
        return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)}).",
                          "Fix the syntax at that line.") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}).", "Check the file's permissions.") from exc


def _schema() -> dict[str, Any]:
    with open(os.path.join(packaged_schemas_dir(), "token_budgets.schema.json"), "rb") as handle:
        return jsonlite.loads(handle.read())  # type: ignore[no-any-return]


def validate(data: dict[str, Any], path: Path) -> None:
    """Raise ConfigError naming the file, line and key of the first problem, and what is expected there."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
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
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
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


def _check_timezone(name: str, used: list[str]) -> None:
    if name == "local":
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{used[-1] if used else CONFIG_NAME}: timezone: {name!r} is not a known IANA zone.",
                          "Use a name such as Europe/Paris or America/New_York, or local.") from exc


# -- the compiled cache (hot path) ---------------------------------------------------------------------------


def _stamp(path: str) -> list[Any]:
    try:
        st = os.stat(path)
    except OSError:
        return [str(path), None, None]
    return [str(path), st.st_mtime_ns, st.st_size]


def watched_files(project_dir: str | None, data_dir: PathLike, explicit: str | None = None) -> list[str]:
    return [*layer_paths(project_dir, explicit, data_dir), os.path.join(packaged_config_dir(), PRICING_NAME)]


def cache_path(data_dir: PathLike, project_dir: str | None, explicit: str | None = None) -> str:
    chosen = explicit or os.environ.get("TOKEN_BUDGET_CONFIG")
    key = zlib.crc32(f"{project_dir}|{chosen}".encode())  # a file name, not a secret
    return os.path.join(data_dir, "cache", f"config-{key:08x}.json")


def load_cached(data_dir: PathLike, project_dir: str | None = None, explicit: str | None = None) -> Config:
    """The validated config, from the compiled cache when no source file changed since it was written."""
    if explicit and not os.path.isfile(os.path.expanduser(explicit)):
        return load(project_dir, explicit=explicit, data_dir=data_dir)  # raises the "does not exist" error
    cache = cache_path(data_dir, project_dir, explicit)
    stamps = [_stamp(p) for p in watched_files(project_dir, data_dir, explicit)]
    try:
        with open(cache, "rb") as handle:
            compiled = jsonlite.loads(handle.read())
        if compiled.get("version") == CACHE_VERSION and compiled.get("stamps") == stamps:
            return Config(compiled["config"], compiled["pricing"], compiled["sources"])
    except (OSError, ValueError, KeyError):
        pass
    from . import site_packages

    site_packages.enable()
    config = load(project_dir, explicit=explicit, data_dir=data_dir)
    os.makedirs(os.path.dirname(cache), mode=0o700, exist_ok=True)
    payload = {"version": CACHE_VERSION, "stamps": stamps, "config": config.data, "pricing": config.pricing,
               "sources": config.sources}
    write_atomically(cache, jsonlite.dumps(payload))
    return config


def save_override(data_dir: PathLike, keys: list[str], value: Any) -> Path:
    """Persist one change made with `tokens budget`/`tokens mode`; the user's YAML is never rewritten."""
    import fcntl
    import json
    from pathlib import Path

    path = Path(data_dir, OVERRIDES_NAME)
    # One lock around read-modify-write: two `tokens budget` runs at once must not lose either change.
    lock = os.open(Path(data_dir, ".overrides.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        node = current
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
        validate(current, path)
        write_atomically(path, json.dumps(current, indent=2, sort_keys=True) + "\n")
    finally:
        os.close(lock)  # releases the flock
    return path

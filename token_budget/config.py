"""Find, layer and validate the configuration; keep a compiled JSON copy so hooks never parse YAML.

Layers, later wins: packaged config/token_budgets.yaml < user $XDG_CONFIG_HOME/token-budget/token_budgets.yaml
< <project>/.claude/token_budgets.yaml < changes made with `tokens budget` / `tokens mode` (overrides.json in the
data dir). $TOKEN_BUDGET_CONFIG (or --config) replaces the user and project layers with that one file. The project
layer is untrusted: only what tightens the layers below it is taken (trust.py).

The hot path calls `load_cached()`: one stat per source file and one json.load. Only when a source changed does it
import yaml and jsonschema, validate, and rewrite the cache.
"""

from __future__ import annotations

import os

from . import jsonlite, nested
from ._records import factory, record
from .errors import ConfigError, TokenBudgetError
from .lean_crc import crc32
from .paths import packaged_config_dir, packaged_schemas_dir, write_atomically

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from .paths import PathLike

CONFIG_NAME = "token_budgets.yaml"
PRICING_NAME = "pricing.yaml"
OVERRIDES_NAME = "overrides.json"
CACHE_VERSION = 4  # 3: the compiled price table; 4: with its alias index


@record(frozen=False)
class Config:
    """The merged, validated configuration plus the price data it was compiled with."""

    data: dict[str, Any]
    pricing: dict[str, Any] = factory(dict)
    sources: list[str] = factory(list)
    notices: list[str] = factory(list)  # what an untrusted project file tried and what of it was ignored
    compiled_prices: dict[str, Any] | None = None  # price_table().compiled(), kept by the cache (load_cached)

    def get(self, *keys: str, default: Any = None) -> Any:
        return nested.get(self.data, *keys, default=default)

    @property
    def timezone(self) -> str:
        return self.get("timezone", default="local")

    @property
    def counted_classes(self) -> tuple[str, ...]:
        return tuple(self.get("counted_token_classes", default=("input", "output", "cache_creation")))

    def price_table(self) -> Any:
        from .price_parse import merge_overrides, parse_table

        return parse_table(merge_overrides(self.pricing, self.get("pricing", default={}) or {}))

    @property
    def prices(self) -> LazyPrices:
        """Prices built on first use: a hook with nothing new to record never pays for the table."""
        return LazyPrices(self)


class LazyPrices:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._table: Any = None

    def cost(self, event: Any, **options: Any) -> Any:
        if self._table is None:
            compiled = self._config.compiled_prices
            if compiled is None:
                self._table = self._config.price_table()
            else:
                from .pricing import PriceTable

                self._table = PriceTable.from_compiled(compiled)
        return self._table.cost(event, **options)


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


MAX_CONFIG_BYTES = 256 << 10  # a config file is a few kilobytes; anything this large is not one
MAX_YAML_NODES = 20_000  # scalars, sequences and mappings in one file
MAX_YAML_DEPTH = 32
MAX_CACHE_BYTES = 4 << 20  # the compiled cache: the packaged prices plus a config, well under this


def project_layer_path(project_dir: PathLike | None, explicit: str | None = None) -> str | None:
    """The repository's config file (untrusted: see trust.py), or None when --config replaces the layers."""
    if not project_dir or explicit or os.environ.get("TOKEN_BUDGET_CONFIG"):
        return None
    return os.path.join(project_dir, ".claude", CONFIG_NAME)


def load(project_dir: PathLike | None = None, *, explicit: str | None = None,
         data_dir: PathLike | None = None) -> Config:
    """Parse and validate every layer (YAML + jsonschema: not for the hot path; see load_cached).

    An invalid user file is an error naming it. The project file is untrusted: when invalid it is skipped with a
    notice, and otherwise only what tightens the user's budgets is taken from it (unless trusted_projects lists
    it); `Config.notices` says what was ignored."""
    from pathlib import Path

    explicit = explicit or os.environ.get("TOKEN_BUDGET_CONFIG")
    if explicit and not os.path.isfile(os.path.expanduser(explicit)):
        raise ConfigError(f"The config file {explicit} does not exist.",
                          "Fix the path given by --config or TOKEN_BUDGET_CONFIG, or unset it.")
    project = project_layer_path(project_dir, explicit)
    merged: dict[str, Any] = {}
    used: list[str] = []
    notices: list[str] = []
    for path in map(Path, layer_paths(project_dir, explicit, data_dir)):
        if project is not None and str(path) == project:
            layer = _project_layer(path, project_dir, merged, notices)
            if layer is None:
                continue
        else:
            layer = _trusted_layer(path)
            if layer is None:
                continue
        merged = merge(merged, layer)
        used.append(str(path))
    validate(merged, Path(used[-1]) if used else Path(CONFIG_NAME))
    pricing_path = Path(packaged_config_dir(), PRICING_NAME)
    pricing = _packaged(pricing_path, _read_yaml, copy=False) if pricing_path.exists() else {}
    return Config(merged, pricing or {}, used, notices)


def _trusted_layer(path: Path) -> dict[str, Any] | None:
    """A layer of the user's (or the packaged defaults), validated: an error names the file."""
    def read(path: Path) -> dict[str, Any] | None:
        layer = _read_layer(path, follow=path.suffix != ".json")
        if layer is not None:
            validate(layer, path)
            _check_timezone(layer.get("timezone", "local"), path)  # the error names the file that set it
        return layer

    return _packaged(path, read) if str(path).startswith(packaged_config_dir()) else read(path)


_PACKAGED: dict[str, tuple[Any, Any]] = {}


def _packaged(path: Path, read: Any, *, copy: bool = True) -> Any:
    """A packaged file, parsed (and checked) once per process while it is unchanged: `tokens` commands and the
    sender load the config more than once. `copy=False` for data no caller modifies (the price table copies it)."""
    stamp = _stamp(str(path))
    known = _PACKAGED.get(str(path))
    if known is None or known[0] != stamp:
        known = _PACKAGED[str(path)] = (stamp, read(path))
    if not copy:
        return known[1]
    import copy as copying

    return copying.deepcopy(known[1])


def _project_layer(path: Path, project_dir: Any, merged: dict[str, Any], notices: list[str]) -> dict[str, Any] | None:
    """The part of the repository's file that may apply, or None. Never raises for what the file holds."""
    from .trust import is_trusted, restrict

    try:
        layer = _read_layer(path, follow=False)
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


def _read_layer(path: Path, *, follow: bool = True) -> dict[str, Any] | None:
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


def _read_yaml(path: Path) -> Any:
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
    key = crc32(f"{project_dir}|{chosen}".encode())  # a file name, not a secret
    return os.path.join(data_dir, "cache", f"config-{key:08x}.json")


def load_cached(data_dir: PathLike, project_dir: str | None = None, explicit: str | None = None, *,
                secrets: bool = False) -> Config:
    """The validated config, from the compiled cache when no source file changed since it was written.

    The cache holds no literal webhook URL (a Slack webhook's URL is its credential): a channel written with one
    reads LITERAL_WEBHOOK there. `secrets=True` (the alert sender, `tokens alerts test`) parses the files again
    when the cache scrubbed one, so it gets the URL itself."""
    if explicit and not os.path.isfile(os.path.expanduser(explicit)):
        return load(project_dir, explicit=explicit, data_dir=data_dir)  # raises the "does not exist" error
    cache = cache_path(data_dir, project_dir, explicit)
    stamps = [_stamp(p) for p in watched_files(project_dir, data_dir, explicit)]
    try:
        from .paths import read_regular

        compiled = jsonlite.loads(read_regular(cache, MAX_CACHE_BYTES))
        if compiled.get("version") == CACHE_VERSION and compiled.get("stamps") == stamps and \
                not (secrets and compiled.get("scrubbed")):
            return Config(compiled["config"], compiled["pricing"], compiled["sources"], compiled["notices"],
                          compiled["prices"])
    except (OSError, ValueError, KeyError, TokenBudgetError):
        pass
    from . import site_packages

    site_packages.enable()
    config = load(project_dir, explicit=explicit, data_dir=data_dir)
    os.makedirs(os.path.dirname(cache), mode=0o700, exist_ok=True)
    data, scrubbed = scrub_webhooks(config.data)
    try:  # built once per change of its sources, so no hook parses a rate (or loads decimal) again
        config.compiled_prices = config.price_table().compiled()
    except TokenBudgetError:
        pass  # invalid prices: the table is built (and its error said) where it is used, as without a cache
    payload = {"version": CACHE_VERSION, "stamps": stamps, "config": data, "pricing": config.pricing,
               "sources": config.sources, "notices": config.notices, "scrubbed": scrubbed,
               "prices": config.compiled_prices}
    text = jsonlite.dumps(payload)
    if len(text) <= MAX_CACHE_BYTES:  # else no cache: every hook parses again, slowly but correctly
        write_atomically(cache, text)
    return config


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


def save_override(data_dir: PathLike, keys: list[str], value: Any) -> Path:
    """Persist one change made with `tokens budget`/`tokens mode`; the user's YAML is never rewritten."""
    import json
    from pathlib import Path

    from . import site_packages

    site_packages.enable()  # a slash command saves from inside a hook, which runs with -S
    from filelock import FileLock

    path = Path(data_dir, OVERRIDES_NAME)
    # One lock around read-modify-write: two `tokens budget` runs at once must not lose either change. A file
    # lock the kernel drops when its holder dies, so a crashed writer never blocks the next.
    with FileLock(str(Path(data_dir, ".overrides.lock")), mode=0o600):
        current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        node = current
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
        validate(current, path)
        write_atomically(path, json.dumps(current, indent=2, sort_keys=True) + "\n")
    return path

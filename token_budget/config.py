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
from .paths import CONFIG_NAME, OVERRIDES_NAME, PRICING_NAME, file_stamp, packaged_config_dir, write_atomically

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from .paths import PathLike

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
        """The prices: the table compiled into the cache when this config came from it (no rate parsed again, and
        neither price_parse nor decimal loaded: the day's report runs in a hook), else parsed from the packaged
        prices with the config's overrides."""
        if self.compiled_prices is not None:
            from .pricing import PriceTable

            return PriceTable.from_compiled(self.compiled_prices)
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
            self._table = self._config.price_table()
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

    from .config_files import merge, packaged, project_layer, read_yaml, trusted_layer, validate

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
            layer = project_layer(path, project_dir, merged, notices)
            if layer is None:
                continue
        else:
            layer = trusted_layer(path)
            if layer is None:
                continue
        merged = merge(merged, layer)
        used.append(str(path))
    validate(merged, Path(used[-1]) if used else Path(CONFIG_NAME))
    pricing_path = Path(packaged_config_dir(), PRICING_NAME)
    pricing = packaged(pricing_path, read_yaml, copy=False) if pricing_path.exists() else {}
    return Config(merged, pricing or {}, used, notices)


# -- the compiled cache (hot path) ---------------------------------------------------------------------------


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
    stamps = [file_stamp(p) for p in watched_files(project_dir, data_dir, explicit)]
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
    from .config_files import scrub_webhooks

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


def save_override(data_dir: PathLike, keys: list[str], value: Any) -> Path:
    """Persist one change made with `tokens budget`/`tokens mode`; the user's YAML is never rewritten."""
    import json
    from pathlib import Path

    from . import site_packages

    site_packages.enable()  # a slash command saves from inside a hook, which runs with -S
    from filelock import FileLock

    from .config_files import validate

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

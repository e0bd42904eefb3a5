"""Reading a nested mapping by a path of keys: the one lookup behind Config.get and the trust checks' view of a
layer being merged. Standard library only, imports nothing (config and trust both use it, so neither imports the
other for it)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any


def get(data: Any, *keys: str, default: Any = None) -> Any:
    """data[k1][k2]…, or `default` when a key is missing or a step is not a mapping."""
    node = data
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node

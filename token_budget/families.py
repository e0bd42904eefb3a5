"""Model identity: the model families, which family a model id belongs to, whether a budget key covers an id, and a
model's label. The one model-id normaliser lives here; pricing, budgets, the policy and the dashboard all use it.

Standard library only, no regex, nothing imported at module top: the hook imports it on every call.
"""

from __future__ import annotations

FAMILIES = ("opus", "sonnet", "haiku", "fable", "mythos")  # every family config/pricing.yaml prices
DOWNGRADE_ORDER = ("opus", "sonnet", "haiku")  # the families degradation switches between, dearest first
GLOB_CHARS = frozenset("*?[")


def segments(model: str) -> list[str]:
    """Split a model id into canonical `-` segments, e.g. "claude", "haiku", "3", "5".

    Bedrock (`us.anthropic.…-v1:0`), Vertex (`…@20250929`), provider prefixes (`anthropic/`), dotted versions
    (`claude-3.5-sonnet`), `[1m]`, `-latest` and 8-digit date segments are dropped. The old order
    (`claude-3-5-haiku`) is rewritten to the new one (`claude-haiku-3-5`).
    """
    s = model.strip().lower()
    s = s.split("[", 1)[0]  # Claude Code's "[1m]" context suffix
    s = s.rsplit("/", 1)[-1]  # bedrock/, vertex_ai/, anthropic/, an ARN's …/profile-id
    if "anthropic." in s:  # anthropic.claude-…, us.anthropic.claude-…, global.anthropic.claude-…
        s = s.rsplit("anthropic.", 1)[-1]
    s = s.split("@", 1)[0].split(":", 1)[0]  # Vertex "@20250929", Bedrock ":0"
    s = s.replace(".", "-").replace("_", "-").replace(" ", "-")
    segs = [
        seg
        for seg in s.split("-")
        if seg
        and seg != "latest"
        and not (len(seg) == 8 and seg.isdigit())
        and not (seg[0] == "v" and seg[1:].isdigit())  # -v1, -v2
    ]
    # claude-3-5-haiku → claude-haiku-3-5: find the first non-numeric segment after "claude"
    if len(segs) > 2 and segs[0] == "claude" and segs[1].isdigit():
        k = 2
        while k < len(segs) and segs[k].isdigit():
            k += 1
        if k < len(segs):
            segs = ["claude", segs[k], *segs[1:k], *segs[k + 1 :]]
    return segs


def family_in(segs: list[str], families: frozenset[str] | set[str] | tuple[str, ...] = FAMILIES) -> str | None:
    """The first segment that names a family, or None."""
    for seg in segs:
        if seg in families:
            return seg
    return None


def family(model: str | None) -> str | None:
    """The family ("opus", "sonnet", "haiku", "fable", "mythos") of a model id or alias in any naming style
    (`opus`, `claude-3-5-haiku-…`, `us.anthropic.claude-opus-4-…`), or None."""
    return family_in(segments(model)) if model else None


def model_matches(key: str, model: str | None) -> bool:
    """Does a per_model key cover this model id? `claude-opus` covers claude-3-opus-20240229 and claude-opus-4-6;
    `claude-opus-4` covers claude-opus-4-1 but not claude-opus-5; `*sonnet*` is a glob; anything else is exact."""
    if not model:
        return False
    if any(c in GLOB_CHARS for c in key):
        from fnmatch import fnmatchcase  # imports re: only a config with a glob pays for it

        return fnmatchcase(model.lower(), key.lower())
    if key.lower() == model.lower():
        return True
    want, have = segments(key), segments(model)
    if want[:1] != ["claude"]:
        have = have[1:] if have[:1] == ["claude"] else have
    return bool(want) and have[: len(want)] == want


def label(key: str) -> str:
    """`claude-sonnet` → Sonnet; `claude-opus-4` → Opus 4; `claude-haiku-4-5` → Haiku 4.5; anything else as
    written."""
    segs = segments(key)
    name = family_in(segs)
    if name is None:
        return key
    version = segs[segs.index(name) + 1 :]
    return name.capitalize() + (f" {'.'.join(version)}" if version and version[0].isdigit() else "")

"""Plain data shared by every module. Standard library only; no I/O."""

from __future__ import annotations

from ._records import factory, record
from .levels import alert_key

TOKEN_CLASSES = ("input", "output", "cache_creation", "cache_read")


@record
class UsageEvent:
    """One API request as seen in a transcript line (or any other source).

    `message_id` identifies the API response; several lines (one per content block, forks, replays) may repeat it,
    and the ledger keeps one row per message_id with the largest usage seen.
    """

    message_id: str
    timestamp: str  # ISO-8601 UTC, "2026-11-28T10:30:00.000Z"
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_5m_tokens: int = 0
    cache_creation_1h_tokens: int = 0
    cache_read_tokens: int = 0
    request_id: str | None = None  # the API's request-id header, as Claude Code wrote it
    session_id: str | None = None
    project: str | None = None
    cwd: str | None = None
    git_branch: str | None = None
    agent_id: str | None = None
    agent_type: str | None = None
    is_sidechain: bool = False
    speed: str | None = None  # "fast" means fast-mode pricing
    service_tier: str | None = None

    @property
    def cache_creation_tokens(self) -> int:
        return self.cache_creation_5m_tokens + self.cache_creation_1h_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens


@record
class Price:
    """USD per million tokens for one model; `long_context` holds the premium rates past 200K input, if any."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    long_context: Price | None = None
    long_context_threshold: int = 200_000
    fast_multiplier: float = 1.0


@record
class Cost:
    """The cost of one request. `status` is "priced", "estimated" (priced by its family) or "unpriced"."""

    micros: int
    status: str = "priced"
    price_key: str | None = None


@record
class ClientTotals:
    """A client's own cumulative figures for one session (Claude Code's `cost-state` line), subagents included.

    `models` holds (model, input, output, cache_creation_5m, cache_creation_1h, cache_read, cost_micros) tuples,
    sorted by model. `taken_at` is the newest timestamp written before the figures (they carry none).
    """

    session_id: str
    taken_at: str
    total_cost_micros: int
    models: tuple[tuple[str, int, int, int, int, int, int], ...]
    unknown_model_cost: bool = False
    path: str | None = None


@record(frozen=False)
class IngestResult:
    """What one ingest pass did."""

    files: int = 0
    lines: int = 0
    events: int = 0
    inserted: int = 0
    updated: int = 0
    malformed: int = 0
    bytes_read: int = 0
    reconciled: int = 0  # sessions checked against the client's own totals
    errors: list[str] = factory(list)


@record
class BudgetState:
    """One budget at one moment. `scope` is "daily", "monthly", "session", "workflow:<name>" or "model:<key>"."""

    scope: str
    used: int  # counted tokens in the period (or run)
    limit: int
    level: str  # one of levels.LEVELS
    period: str  # what "once per period" means for this scope: "2026-11-28", "2026-11", a run id, …
    resets_at: str | None = None  # ISO UTC; None for a workflow run (it ends, it does not reset)
    used_usd: float | None = None
    limit_usd: float | None = None
    acked: tuple[int, ...] = ()  # thresholds acknowledged with `tokens ack` for this period

    @property
    def percent(self) -> float:
        """The larger of the token and the USD percentage (a budget may set either limit, or both)."""
        tokens = 100.0 * self.used / self.limit if self.limit else 0.0
        usd = 100.0 * (self.used_usd or 0.0) / self.limit_usd if self.limit_usd else 0.0
        return round(max(tokens, usd), 1)

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


@record
class Alert:
    """A threshold crossed: delivered once per (scope, threshold, period) through the configured channels."""

    scope: str
    level: str
    threshold: int  # percent: 70, 80, 90, 100 or 110
    period: str
    used: int
    limit: int
    created_at: str
    workflow: str | None = None
    recommendation: str | None = None

    @property
    def key(self) -> str:
        """The alert id `tokens ack` takes: no shell metacharacter in it (`daily/100/2026-11-30`)."""
        return alert_key(self.scope, self.threshold, self.period)

    @property
    def percent(self) -> float:
        return round(100.0 * self.used / self.limit, 1) if self.limit else 0.0


@record
class Decision:
    """What the policy says about the next step of a session, before any protocol is involved.

    `action` is "allow", "block" (no new request: refuse the prompt or the tool call) or "stop" (end everything).
    A block whose `scope` starts with "model:" concerns only requests on that model (`blocked_models`).
    `alerts` are the thresholds crossed so far; the caller claims them once per period and `announce`s the winner.
    """

    level: str = "ok"
    scope: str | None = None
    action: str = "allow"
    reason: str | None = None
    user_message: str | None = None
    model_context: str | None = None
    alerts: tuple[Alert, ...] = ()
    economy: bool = False
    blocked_models: tuple[str, ...] = ()
    states: tuple[BudgetState, ...] = ()
    actions: tuple[str, ...] = ()  # degradation steps enabled in economy (degradation_strategy.on_budget_exceeded)

    @property
    def model_only(self) -> bool:
        return self.action != "allow" and bool(self.scope) and str(self.scope).startswith("model:")


@record
class Degradation:
    """One step taken to save tokens (a cheaper subagent, a limited Read, a cached call denied, …), for reports."""

    kind: str
    session_id: str | None = None
    tool: str | None = None
    detail: str | None = None  # JSON text
    from_model: str | None = None
    to_model: str | None = None

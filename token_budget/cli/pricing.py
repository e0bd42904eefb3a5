"""`tokens pricing`: the prices in use, kept up to date offline from LiteLLM's price file."""

from __future__ import annotations

import click

from . import Env, UserError, json_option, pass_env, print_json


@click.group()
def pricing() -> None:
    """Prices: import LiteLLM's file into your overrides, re-price recorded requests."""


@pricing.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--effective", type=click.DateTime(["%Y-%m-%d"]),
              help="First day the imported prices apply (default: today, UTC). Earlier requests keep theirs.")
@click.option("--provider", default="anthropic", show_default=True,
              help="LiteLLM's litellm_provider whose chat models are read.")
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@json_option
@pass_env
def import_prices(env: Env, file: str, effective, provider: str, dry_run: bool, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Read LiteLLM's model_prices_and_context_window.json (the file ccusage uses) into your price overrides.

    \b
    Offline: download the file yourself, e.g. from
    https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json
    Each changed price becomes a new period from --effective on; run `tokens pricing reprice` to re-price what
    is already recorded.
    """
    from .. import clock
    from ..config import save_override
    from ..price_import import litellm_prices, plan_import, read_litellm

    day = (effective or clock.now()).strftime("%Y-%m-%d")
    prices, skipped = litellm_prices(read_litellm(file), provider)
    if not prices:
        raise UserError(f"No {provider!r} chat models with prices in {file}.\n"
                        "Give LiteLLM's model_prices_and_context_window.json, or another --provider.")
    current = env.config.get("pricing", default={}) or {}
    plan = plan_import(prices, env.config.pricing, current, day)
    plan.skipped = skipped
    written = None
    if not dry_run and (plan.added or plan.changed):
        written = save_override(env.data_dir, ["pricing"], plan.overrides)
    summary = {"effective": day, "models_read": len(prices), "added": plan.added, "changed": plan.changed,
               "unchanged": plan.unchanged, "skipped": plan.skipped, "written": str(written) if written else None,
               "dry_run": dry_run}
    if as_json:
        print_json(summary)
        return
    click.echo(f"Read {len(prices)} {provider} models from {file}: {len(plan.added)} new, {len(plan.changed)} "
               f"with a new price from {day}, {plan.unchanged} unchanged.")
    for model in plan.added:
        click.echo(f"  new      {model}")
    for model in plan.changed:
        click.echo(f"  changed  {model}")
    for reason in plan.skipped:
        click.echo(f"  skipped  {reason}")
    if written:
        click.echo(f"Saved to {written}. Run `tokens pricing reprice` to re-price recorded requests.")
    elif dry_run:
        click.echo("Dry run: nothing written.")


@pricing.command()
@json_option
@pass_env
def reprice(env: Env, as_json: bool) -> None:
    """Re-price every recorded request with the prices in use now (each at the price of its own day)."""
    from ..ledger import reprice as reprice_rows

    changed, by_status = reprice_rows(env.ledger, env.config.price_table())
    if as_json:
        print_json({"changed": changed, "requests_by_status": by_status})
        return
    click.echo(f"Re-priced {changed:,} requests; now " + ", ".join(f"{n:,} {s}" for s, n in sorted(by_status.items()))
               + ".")

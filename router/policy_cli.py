"""`ttc-router policy validate | show | explain` (mounted by `router.cli` as `policy`).

    ttc-router policy validate FILE          exit 0 (valid, prints the revision) or 1 (errors)
    ttc-router policy show [--policy FILE]   effective policy (defaults filled in) + revision
    ttc-router policy merge BASE FRAGMENT    BASE with FRAGMENT's tiers etc. merged in, validated
    ttc-router policy explain --tenant T "query" [--tier hard] [--hint very_hard]
                                             tenant caps and overrides, tier, plan, worst case,
                                             and what a downgrade would pick

Without `--policy`, `show` and `explain` use TTC_POLICY_PATH, else the packaged default.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from classifier.base import TIERS, Tier, TierScores
from policies.advice import policy_warnings
from policies.loader import LoadedPolicy, PolicyValidationError, load_policy
from policies.merge import merge_texts
from router.planning import Call, plan, serving_model
from router.settings import Settings
from router.tenancy import Tenant
from router.upstreams.base import Message

policy_app = typer.Typer(
    help="Validate, show and explain routing policies.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: long option names wrap instead of being cut off
)

PolicyOpt = Annotated[
    Path | None, typer.Option("--policy", help="Policy YAML (default: TTC_POLICY_PATH / packaged)")
]


def _load(path: Path | None) -> LoadedPolicy:
    try:
        if path is None:
            path = Settings().policy_path  # reads TTC_POLICY_PATH
        return load_policy(path)
    except PolicyValidationError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None


@policy_app.command("validate")
def validate(file: Annotated[Path, typer.Argument(help="Policy YAML to check")]) -> None:
    """Check FILE; exit 0 when it would be served, 1 with every error otherwise."""
    try:
        loaded = load_policy(file)
    except PolicyValidationError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"ok: {file} revision {loaded.revision}")
    for warning in policy_warnings(loaded.policy):
        typer.echo(f"warning: {warning}", err=True)


@policy_app.command("show")
def show(policy: PolicyOpt = None) -> None:
    """Print the effective policy (every default filled in) and its revision."""
    loaded = _load(policy)
    typer.echo(f"# source: {loaded.source}\n# revision: {loaded.revision}")
    typer.echo(yaml.safe_dump(loaded.policy.model_dump(mode="json"), sort_keys=False).rstrip())


@policy_app.command("merge")
def merge(
    base: Annotated[Path, typer.Argument(help="Complete policy YAML to start from")],
    fragment: Annotated[Path, typer.Argument(help="Fragment (e.g. calibrate's) to merge in")],
    out: Annotated[Path | None, typer.Option(help="Write here (default: print)")] = None,
) -> None:
    """Merge FRAGMENT's tiers/models/verifiers/tenants into BASE; validate; print or write."""
    try:
        text = merge_texts(base.read_text("utf-8"), fragment.read_text("utf-8"),
                           base_source=str(base), fragment_source=str(fragment))
    except OSError as exc:
        typer.echo(f"error: cannot read: {exc}", err=True)
        raise typer.Exit(1) from None
    except PolicyValidationError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    if out is None:
        typer.echo(text.rstrip())
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"ok: wrote {out} (revision {load_policy(out).revision})", err=True)


def explain_plan(
    loaded: LoadedPolicy, tenant_name: str, query: str, tier: Tier, hint: str | None = None
) -> dict[str, Any]:
    """What the router would do for `query` classified as `tier`, for tenant `tenant_name`:
    the planner's own plan (`router.planning.plan`), worst case and downgrades."""
    policy = loaded.policy
    spec = policy.tenant(tenant_name)
    call = Call(endpoint="route", model=serving_model(policy), messages=(Message("user", query),),
                tier_hint=hint)
    scores = TierScores.from_probabilities([1.0 if t is tier else 0.0 for t in TIERS], "fixed")
    p = plan(policy, Tenant(tenant_name, spec), call, scores)
    return {
        "policy_revision": loaded.revision,
        "tenant": {
            "name": tenant_name,
            "configured": spec is not None,
            "caps": None if spec is None else {
                "daily_usd": spec.daily_usd, "monthly_usd": spec.monthly_usd,
                "daily_tokens": spec.daily_tokens, "monthly_tokens": spec.monthly_tokens,
            },
            "max_tier": spec.max_tier.value if spec and spec.max_tier else None,
            "tier_remap": {k.value: v.value for k, v in spec.tier_remap.items()} if spec else {},
            "allow_tier_hint": bool(spec and spec.allow_tier_hint),
        },
        "classified_tier": tier.value,
        "hint": hint,
        "tier": p.tier_label,
        "plan": {
            "strategy": p.strategy, "params": dict(p.params), "model": p.model,
            "verifier": p.verifier, "max_tokens": p.max_tokens,
            "token_budget": p.token_budget, "deadline_s": p.deadline_s,
        },
        "prompt_tokens_estimate": p.prompt_tokens,
        "worst_case_usd": p.worst_usd,
        "worst_case_tokens": p.worst_tokens,
        "on_exceeded": policy.budgets.on_exceeded,
        "downgrade_order": [
            {"tier": d.tier_label, "strategy": d.strategy, "worst_case_usd": d.worst_usd,
             "worst_case_tokens": d.worst_tokens}
            for d in p.downgrades
        ],
    }


async def _classify(query: str) -> Tier:
    from classifier import classification_text, load_classifier

    clf = await asyncio.to_thread(load_classifier, None, None)
    try:
        scores = await clf.classify([classification_text((Message("user", query),))])
    finally:
        await clf.aclose()
    return scores[0].tier


@policy_app.command("explain")
def explain(
    query: Annotated[str, typer.Argument(help="The query to explain")],
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the anonymous one)")] = None,
    tier: Annotated[
        Tier | None, typer.Option(help="Skip the classifier and assume this tier")
    ] = None,
    hint: Annotated[str | None, typer.Option(help="A request's x-ttc-tier hint")] = None,
    policy: PolicyOpt = None,
) -> None:
    """Show tenant overrides, tier, strategy and worst-case cost for QUERY (no generation)."""
    loaded = _load(policy)
    known = sorted({*loaded.policy.tenants, *filter(None, [loaded.policy.anonymous_tenant])})
    if tenant is not None and tenant not in known:
        typer.echo(f"error: unknown tenant {tenant!r}; known: {', '.join(known) or '(none)'} "
                   f"(source: {loaded.source})", err=True)
        raise typer.Exit(1)
    name = tenant or loaded.policy.anonymous_tenant or "default"
    classified = tier if tier is not None else asyncio.run(_classify(query))
    try:
        out = explain_plan(loaded, name, query, classified, hint)
    except Exception as exc:  # e.g. an invalid hint
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(out, indent=2))


__all__ = ["explain_plan", "policy_app"]

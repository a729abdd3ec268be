"""The `ttc-router` command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from router import __version__

app = typer.Typer(
    name="ttc-router",
    help="Routes each LLM query to the test-time-compute strategy its difficulty deserves.",
    no_args_is_help=True,
    add_completion=False,
    # Plain click help: Rich's option tables cut long option names and help off at 80 columns
    # when stdout is not a terminal; click's formatter wraps them instead.
    rich_markup_mode=None,
)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (TTC_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (TTC_PORT)")] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy YAML (TTC_POLICY_PATH)")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes (TTC_WORKERS); they share Redis state and metrics"),
    ] = None,
) -> None:
    """Run the HTTP service (settings from TTC_* environment variables)."""
    from router.serve import serve as run_server
    from router.settings import Settings

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if policy is not None:
        overrides["policy_path"] = policy
    if workers is not None:
        overrides["workers"] = workers
    run_server(Settings(**overrides))


@app.command()
def route(
    text: Annotated[str, typer.Argument(help="The query to route")],
    policy: Annotated[Path | None, typer.Option(help="Policy YAML")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant name (trusted mode)")] = None,
) -> None:
    """Print the routing decision for TEXT (no generation, no local model start)."""
    typer.echo(json.dumps(asyncio.run(_route(text, policy, tenant)), indent=2))


async def _route(text: str, policy_path: Path | None, tenant_name: str | None) -> dict[str, Any]:
    """`/v1/route` offline: the embedding classifier (no LLM fallback, no upstream started),
    then the same planner and the same output."""
    from classifier import classification_text, load_classifier
    from policies.loader import load_policy
    from router.planning import Call, describe, plan, serving_model
    from router.tenancy import Tenant
    from router.upstreams.base import Message

    loaded = load_policy(policy_path)
    policy = loaded.policy
    clf = await asyncio.to_thread(load_classifier, None, None)
    try:
        call = Call(endpoint="route", model=serving_model(policy),
                    messages=(Message("user", text),))
        scores = (await clf.classify([classification_text(call.messages)]))[0]
    finally:
        await clf.aclose()
    name = tenant_name or policy.anonymous_tenant or "default"
    d = plan(policy, Tenant(name, policy.tenant(name)), call, scores)
    return describe(d, tenant=name, revision=loaded.revision, latency=None)


def _mount_subcommands() -> None:
    from classifier.cli import classifier_app, classify_cmd
    from router.calibrate.cli import calibrate_cmd
    from router.policy_cli import policy_app
    from router.prm_cli import prm_labels_cmd

    app.add_typer(classifier_app, name="classifier")
    app.command("classify")(classify_cmd)
    app.add_typer(policy_app, name="policy")
    app.command("calibrate")(calibrate_cmd)
    app.command("prm-labels")(prm_labels_cmd)


_mount_subcommands()


if __name__ == "__main__":
    app()

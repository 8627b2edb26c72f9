"""`contam models check SPEC`: what a model can do, and whether it answers."""

from __future__ import annotations

import asyncio
import json

import click

from contam.cli.common import open_model
from contam.models.base import GenerateRequest, ModelClient, ScoreRequest


@click.group()
def models() -> None:
    """Inspect model backends."""


@models.command()
@click.argument("spec")
@click.option("--api-key-env", default=None, metavar="VAR", help="environment variable holding the API key")
def check(spec: str, api_key_env: str | None) -> None:
    """Print SPEC's identity and capabilities, then make one scoring and one generation call."""
    parsed, client = open_model(spec, api_key_env)

    async def probe_calls(model: ModelClient) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            caps = model.capabilities
            if caps.prompt_logprobs:
                [scored] = await model.score(
                    [ScoreRequest(text="The quick brown fox jumps over the lazy dog.")]
                )
                checks["score"] = f"ok: {len(scored.logprobs)} tokens, mean log-prob {scored.mean:.3f}"
            else:
                checks["score"] = "not offered (no prompt log-probs)"
            [gen] = await model.generate([GenerateRequest(prompt="def add(a, b):", max_tokens=8)])
            checks["generate"] = f"ok: {gen.completions[0].text!r}"
        finally:
            await model.aclose()
        return checks

    checks = asyncio.run(probe_calls(client))
    info = {
        "spec": str(parsed),
        "identity": client.identity.model_dump(),
        "capabilities": client.capabilities.model_dump(),
        "checks": checks,
    }
    click.echo(json.dumps(info, indent=2))

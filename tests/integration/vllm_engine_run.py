"""Run score/generate requests through the in-process vLLM backend in a process of its own.

vLLM's engine spawns a worker process and keeps it for the life of the interpreter, so the
tests drive it from this script: `python vllm_engine_run.py MODEL_DIR REQUESTS.json OUT.json`.
REQUESTS.json: {"score": [ScoreRequest...], "generate": [GenerateRequest...], and optionally
"exchangeability": {"texts": [...], "options": {...}}}; OUT.json holds the identity, the
capabilities and the results as the backend returned them (and the probe's statistic).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path


def main(model_dir: str, requests_path: str, out_path: str) -> None:
    from contam.models.base import GenerateRequest, ScoreRequest
    from contam.models.spec import ModelSpec
    from contam.models.vllm_engine import create
    from contam.probe import ProbeContext
    from contam.registry import get_probe
    from contam.runner import Runner
    from contam.types import Item, Partition

    asks = json.loads(Path(requests_path).read_text())
    model = create(ModelSpec.parse(f"vllm:{model_dir}?max_model_len=1024"))

    async def run() -> dict[str, object]:
        scored = await model.score([ScoreRequest.model_validate(r) for r in asks.get("score", [])])
        generated = await model.generate(
            [GenerateRequest.model_validate(r) for r in asks.get("generate", [])]
        )
        out: dict[str, object] = {
            "identity": model.identity.model_dump(mode="json"),
            "capabilities": model.capabilities.model_dump(mode="json"),
            "score": [r.model_dump(mode="json") for r in scored],
            "generate": [r.model_dump(mode="json") for r in generated],
        }
        if "exchangeability" in asks:
            ask = asks["exchangeability"]
            items = tuple(Item(id=str(i), partition="t", text=t) for i, t in enumerate(ask["texts"]))
            probe = get_probe("exchangeability").from_options(ask["options"])
            result = await probe.run(Partition("t", items), Runner(model), ProbeContext("b"))
            out["exchangeability"] = result.model_dump(mode="json")
        return out

    Path(out_path).write_text(json.dumps(asyncio.run(run())))
    model.shutdown()
    # Even after shutdown, vLLM's teardown sometimes races the interpreter's and aborts
    # ("terminate called without an active exception", exit -6; seen once in six engine runs on a
    # fresh clone) after the answers are written: leave without running it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(*sys.argv[1:4])

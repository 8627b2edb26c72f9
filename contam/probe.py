"""The probe contract: a name, the capabilities it needs, typed parameters, one async `run`.

Probes are pure. They build requests and turn results into scores; the `model` they are
handed is the runner's caching client, which owns batching, concurrency, retries and the
call cache. A probe never sees a raw dataset row, only `Item`s.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from contam.errors import InputError
from contam.models.base import ModelClient
from contam.results import ItemScore, ProbeResult
from contam.stats import compare_to_reference, mean_ci
from contam.types import Item, Partition


class ProbeParams(BaseModel):
    """Base of every probe's parameters: frozen, unknown fields rejected, each one described."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class ProbeContext:
    """What a probe may know besides the partition and the model."""

    benchmark: str
    reference: Partition | None = None
    seed: int = 0
    extras: Mapping[str, Any] = field(default_factory=dict)


class Probe(ABC):
    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[ProbeParams]] = ProbeParams

    def __init__(self, params: ProbeParams | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Probe:
        """Build from user options (CLI `--param probe.key=value`, a config file, a REST body)."""
        try:
            return cls(cls.Params.model_validate(dict(options)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputError(first["msg"], field=f"{cls.name}.{where}") from None

    def param_dict(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json")

    @abstractmethod
    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult: ...

    def skipped(self, partition: Partition, reason: str) -> ProbeResult:
        return ProbeResult.skip(self.name, partition.name, self.param_dict(), reason)


class ItemScoreProbe(Probe):
    """A probe that gives each item one score; the partition statistic is shared by all of them.

    With a reference partition: a one-sided Mann-Whitney U test and the AUROC (bootstrap CI) of
    suspect against reference. Without one, or when the reference is the partition itself: the
    mean with a t interval, and a note that no test was possible.
    """

    @abstractmethod
    async def score_items(
        self, items: Sequence[Item], model: ModelClient, ctx: ProbeContext
    ) -> list[ItemScore]: ...

    def notes(self, model: ModelClient) -> tuple[str, ...]:
        """Caveats specific to this probe and model, carried into the report."""
        return ()

    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult:
        lacking = model.capabilities.missing(self.needs)
        if lacking:
            return self.skipped(partition, f"model {model.identity.name!r} lacks: {', '.join(lacking)}")
        scores = await self.score_items(partition.items, model, ctx)
        values = [s.score for s in scores]
        mean, interval = mean_ci(values)
        notes = list(self.notes(model))
        statistic = None
        if ctx.reference is None:
            notes.append("no reference partition given: scores reported, no test was possible")
        elif ctx.reference.name == partition.name:
            notes.append(
                f"the reference partition is {partition.name!r} itself: scores reported, "
                "no test was possible"
            )
        else:
            ref_scores = await self.score_items(ctx.reference.items, model, ctx)
            statistic = compare_to_reference(
                values, [s.score for s in ref_scores], reference_name=ctx.reference.name, seed=ctx.seed
            )
        return ProbeResult(
            probe=self.name,
            partition=partition.name,
            params=self.param_dict(),
            items=tuple(scores),
            mean=mean,
            mean_ci=interval,
            statistic=statistic,
            notes=tuple(notes),
        )

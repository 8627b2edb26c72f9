"""The probe contract: a name, the capabilities it needs, typed parameters, one async `run`.

Probes are pure. They build requests and turn results into scores; the `model` they are
handed is the runner's caching client, which owns batching, concurrency, retries and the
call cache. A probe never sees a raw dataset row, only `Item`s.

Building a probe (`from_options`, with parameters a network client may have sent) touches
neither the disk nor the network. A parameter that names a second model or a file is typed as a
reference (`contam.resolve`), and the probe opens it at run time through `ctx.resolver`, which the
caller supplies: the CLI's resolves specs and paths, the service's registered names only.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from contam.errors import InputError
from contam.models.base import ModelClient
from contam.resolve import LocalResolver, Resolver
from contam.results import ItemScore, ProbeResult, UnscoredItem
from contam.stats import compare_to_reference, mean_ci
from contam.types import Item, Partition


class ProbeParams(BaseModel):
    """Base of every probe's parameters: frozen, unknown fields rejected, each one described."""

    model_config = ConfigDict(frozen=True, extra="forbid")


CAP_KEY = "x-contam-cap"


def scales(cap: str) -> dict[str, JsonValue]:
    """`json_schema_extra` of a parameter that scales a probe's work: the service bounds it by its
    `caps.<cap>` (`servers.settings.ProbeCaps`; a `min_...` cap is a floor), and says so in its
    OpenAPI schema. Every such parameter must declare one, or the service cannot bound it."""
    return {CAP_KEY: cap}


def capped(params: BaseModel, where: str = "") -> Iterator[tuple[str, str, float]]:
    """Every set parameter that declares a cap, at any depth: (dotted path, cap, value)."""
    for name, info in type(params).model_fields.items():
        value = getattr(params, name)
        path = f"{where}.{name}" if where else name
        extra = info.json_schema_extra
        cap = extra.get(CAP_KEY) if isinstance(extra, dict) else None
        if isinstance(cap, str) and isinstance(value, int | float) and not isinstance(value, bool):
            yield path, cap, value
        elif isinstance(value, BaseModel):
            yield from capped(value, path)


@dataclass(frozen=True)
class ProbeContext:
    """What a probe may know besides the partition and the model."""

    benchmark: str
    reference: Partition | None = None
    seed: int = 0
    extras: Mapping[str, Any] = field(default_factory=dict)
    # Opens what a parameter names (a second model, a file); a spec-and-path resolver by default.
    resolver: Resolver = field(default_factory=LocalResolver)


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
    mean with a t interval, and a note that no test was possible. Items the probe cannot score
    (`UnscoredItem`, with a reason) are listed apart and left out of every statistic; the notes
    say how many and why.
    """

    @abstractmethod
    async def score_items(
        self, items: Sequence[Item], model: ModelClient, ctx: ProbeContext
    ) -> Sequence[ItemScore | UnscoredItem]: ...

    @staticmethod
    def item_score(
        item_id: str, value: float, detail: dict[str, Any], *, unscorable: str | None = None
    ) -> ItemScore | UnscoredItem:
        """The item's score, or why it has none (`unscorable`, or a score that is not finite)."""
        if unscorable is None and not math.isfinite(value):
            unscorable = "the score is not finite"
        if unscorable is not None:
            return UnscoredItem(id=item_id, reason=unscorable, detail=detail)
        return ItemScore(id=item_id, score=value, detail=detail)

    def notes(self, model: ModelClient) -> tuple[str, ...]:
        """Caveats specific to this probe and model, carried into the report."""
        return ()

    async def run(self, partition: Partition, model: ModelClient, ctx: ProbeContext) -> ProbeResult:
        lacking = model.capabilities.missing(self.needs)
        if lacking:
            return self.skipped(partition, f"model {model.identity.name!r} lacks: {', '.join(lacking)}")
        scores, unscored = _split(await self.score_items(partition.items, model, ctx))
        values = [s.score for s in scores]
        mean, interval = mean_ci(values) if values else (None, None)
        notes = list(self.notes(model))
        if unscored:
            notes.append(
                _unscored_note(unscored, len(partition.items), "excluded from the mean and the test")
            )
        statistic = None
        ref_scores: list[ItemScore] = []
        if ctx.reference is None:
            notes.append("no reference partition given: scores reported, no test was possible")
        elif ctx.reference.name == partition.name:
            notes.append(
                f"the reference partition is {partition.name!r} itself: scores reported, no test was possible"
            )
        else:
            ref = ctx.reference
            ref_scores, ref_unscored = _split(await self.score_items(ref.items, model, ctx))
            if ref_unscored:
                notes.append(
                    _unscored_note(
                        ref_unscored, len(ref.items), "excluded from the test", of=f"{ref.name!r} "
                    )
                )
            if values and ref_scores:
                statistic = compare_to_reference(
                    values, [s.score for s in ref_scores], reference_name=ref.name, seed=ctx.seed
                )
            else:
                empty = partition.name if not values else ref.name
                notes.append(f"no scorable item in {empty!r}: no test was possible")
        return ProbeResult(
            probe=self.name,
            partition=partition.name,
            params=self.param_dict(),
            items=tuple(scores),
            unscored=tuple(unscored),
            reference_items=tuple(ref_scores),
            mean=mean,
            mean_ci=interval,
            statistic=statistic,
            notes=tuple(notes),
        )


def _split(
    results: Sequence[ItemScore | UnscoredItem],
) -> tuple[list[ItemScore], list[UnscoredItem]]:
    scores = [r for r in results if isinstance(r, ItemScore)]
    return scores, [r for r in results if isinstance(r, UnscoredItem)]


def _unscored_note(unscored: Sequence[UnscoredItem], total: int, effect: str, of: str = "") -> str:
    reasons = Counter(u.reason for u in unscored)
    why = "; ".join(f"{reason} ({count})" for reason, count in sorted(reasons.items()))
    return f"{len(unscored)} of {total} {of}items could not be scored, {effect}: {why}"

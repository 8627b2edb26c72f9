"""What a probe returns: per-item scores and one partition statistic, with provenance."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Interval(_Frozen):
    low: float
    high: float
    level: float = 0.95
    method: str = Field(description="how the interval was computed, e.g. 't' or 'bootstrap(2000)'")


class PartitionStatistic(_Frozen):
    """A test of the partition as a whole. `p_value` is one-sided toward 'seen', under `null`."""

    name: str = Field(description="what the statistic is, e.g. 'mann_whitney_u'")
    value: float
    p_value: float | None = None
    null: str = Field(description="the null hypothesis the p-value is computed under")
    effect_name: str | None = Field(default=None, description="e.g. 'auroc' against the reference")
    effect: float | None = None
    effect_ci: Interval | None = None
    reference: str | None = Field(default=None, description="the reference partition, if one was used")
    n: int
    n_reference: int | None = None


class ItemScore(_Frozen):
    id: str
    # Finite by construction: JSON has no NaN, and one NaN would void every partition statistic.
    score: float = Field(allow_inf_nan=False, description="higher = more likely seen")
    detail: dict[str, Any] = Field(default_factory=dict)


class UnscoredItem(_Frozen):
    """An item the probe could not score; it is left out of the mean and the partition test."""

    id: str
    reason: str = Field(description="why no score exists, e.g. no scored tokens")
    detail: dict[str, Any] = Field(default_factory=dict)


class ProbeResult(_Frozen):
    probe: str
    partition: str
    params: dict[str, Any] = Field(description="every parameter the score depends on (provenance)")
    items: tuple[ItemScore, ...] = ()
    unscored: tuple[UnscoredItem, ...] = Field(
        default=(), description="items that could not be scored, with why; excluded from every statistic"
    )
    reference_items: tuple[ItemScore, ...] = Field(
        default=(),
        description="the reference partition's item scores the test compared against (for plots and ROC)",
    )
    mean: float | None = None
    mean_ci: Interval | None = None
    statistic: PartitionStatistic | None = None
    skipped: str | None = Field(default=None, description="why the probe could not run, if it did not")
    notes: tuple[str, ...] = Field(default=(), description="caveats a reader must see")

    @classmethod
    def skip(cls, probe: str, partition: str, params: dict[str, Any], reason: str) -> ProbeResult:
        return cls(probe=probe, partition=partition, params=params, skipped=reason)

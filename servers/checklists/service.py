"""Checklist jobs: checked against the server's registry before they are queued."""

from __future__ import annotations

from pydantic import ValidationError

from contam.errors import InputError
from servers.checklists.schemas import ChecklistRequest
from servers.problems import ApiProblem, from_input_error, from_validation_error
from servers.scans.schemas import Accepted, BenchmarkSpec
from servers.scans.service import JobService, check_model, check_probes_of, check_work, scored_items
from servers.store.base import JobKind


class ChecklistService(JobService):
    kind: JobKind = "checklist"
    prefix = "/v1/checklists"
    result_suffix = "result"

    def parse(self, data: object) -> ChecklistRequest:
        try:
            return ChecklistRequest.model_validate(data)
        except ValidationError as exc:
            raise from_validation_error(exc) from None

    def submit(self, owner: str, request: ChecklistRequest, idempotency_key: str | None) -> Accepted:
        from servers.benchmarks import open_benchmark

        check_model(self.settings, request.model)
        check_probes_of(self.settings, request.probes)
        items = 0
        for i, b in enumerate(request.benchmarks):
            try:
                bench = open_benchmark(BenchmarkSpec(name=b.name))
            except InputError as exc:
                raise from_input_error(exc, field=f"benchmarks[{i}].name") from None
            for j, name in enumerate([*(b.partitions or ()), *([b.reference] if b.reference else [])]):
                if name not in bench.partitions:
                    where = f"benchmarks[{i}].partitions[{j}]" if j < len(b.partitions or ()) else "reference"
                    field = where if where != "reference" else f"benchmarks[{i}].reference"
                    raise ApiProblem(
                        422, "invalid-input", f"no partition {name!r} in {b.name!r}", field=field
                    )
            items += scored_items(bench, b.partitions, b.reference)
        check_work(self.settings, items, len(request.probes), field="benchmarks")
        for i, name in enumerate(request.indexes):
            if self.settings.index(name) is None:
                known = ", ".join(x.name for x in self.settings.indexes) or "none"
                raise ApiProblem(
                    422,
                    "unknown-index",
                    f"no index {name!r} is registered on this server (has: {known})",
                    field=f"indexes[{i}]",
                )
        try:
            request.to_config(self.settings)
        except (ValueError, InputError) as exc:
            raise ApiProblem(422, "invalid-input", str(exc)) from None
        return self.enqueue(owner, request.model_dump(mode="json", exclude_none=True), idempotency_key)

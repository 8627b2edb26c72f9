"""Overlap queries run synchronously: an index query reads each shard once and answers in
seconds for a benchmark of a few thousand items (`contam index query`), well inside an HTTP
request; a job would add a poll for no gain. They run in the threadpool, off the event loop."""

from __future__ import annotations

from pydantic import ValidationError

from contam.errors import ContamError, InputError
from corpora_index.report import OverlapReport
from servers.benchmarks import open_benchmark
from servers.overlap.schemas import OverlapRequest
from servers.problems import ApiProblem, from_input_error, from_validation_error
from servers.scans.service import upload_limits
from servers.settings import ServerSettings


class OverlapService:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings

    def parse(self, data: object) -> OverlapRequest:
        try:
            return OverlapRequest.model_validate(data, context={"limits": upload_limits(self.settings)})
        except ValidationError as exc:
            raise from_validation_error(exc) from None

    def query(self, request: OverlapRequest) -> OverlapReport:
        from corpora_index.api import check_index

        entry = self.settings.index(request.index)
        if entry is None:
            known = ", ".join(i.name for i in self.settings.indexes) or "none"
            raise ApiProblem(
                422,
                "unknown-index",
                f"no index {request.index!r} is registered on this server (has: {known})",
                field="index",
            )
        try:
            bench = open_benchmark(request.benchmark)
        except InputError as exc:
            raise from_input_error(exc) from None
        parts = request.partitions or list(bench.partitions)
        for i, name in enumerate(parts):
            if name not in bench.partitions:
                raise ApiProblem(
                    422, "invalid-input", f"no partition {name!r} in the benchmark", field=f"partitions[{i}]"
                )
        items = [item for name in parts for item in bench.partitions[name].items]
        try:
            return check_index(
                items,
                entry.path,
                frequency_cap=request.frequency_cap,
                max_documents=request.max_documents,
                benchmark=bench.name,
            )
        except InputError:
            raise
        except ContamError as exc:  # the registered index is unreadable: the server's fault, said so
            raise ApiProblem(
                503, "index-unavailable", f"index {request.index!r} cannot be read: {exc}"
            ) from None

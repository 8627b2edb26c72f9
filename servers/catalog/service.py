"""The catalog: registered models and indexes from the settings, built-in benchmarks from the library."""

from __future__ import annotations

from functools import cached_property

from contam.errors import ContamError
from servers.benchmarks import builtin_names, open_benchmark
from servers.catalog.schemas import BenchmarkList, BenchmarkOut, IndexList, IndexOut, ModelList, ModelOut
from servers.scans.schemas import BenchmarkSpec
from servers.settings import ServerSettings


class CatalogService:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings

    def models(self) -> ModelList:
        return ModelList(items=[ModelOut(**m.public()) for m in self.settings.models])

    def indexes(self) -> IndexList:
        return IndexList(
            items=[IndexOut(name=i.name, description=i.description) for i in self.settings.indexes]
        )

    @cached_property
    def _benchmarks(self) -> BenchmarkList:
        # Loaded once per process: the built-ins do not change while it runs.
        out = []
        for name in builtin_names():
            try:
                bench = open_benchmark(BenchmarkSpec(name=name))
            except ContamError as exc:  # e.g. the shared data folder is absent on this machine
                out.append(BenchmarkOut(name=name, available=False, problem=str(exc)))
                continue
            out.append(BenchmarkOut(name=name, format=bench.format, partitions=bench.counts))
        return BenchmarkList(items=out)

    def benchmarks(self) -> BenchmarkList:
        return self._benchmarks

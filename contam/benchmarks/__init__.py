"""Benchmark loading: local files and built-in real benchmarks, validated into `Item`s."""

from contam.benchmarks.load import load_benchmark, select_partitions
from contam.benchmarks.mapping import FieldMap, render_mc

__all__ = ["FieldMap", "load_benchmark", "render_mc", "select_partitions"]

"""contam: did a model see the benchmark before its score was published?

The public API. Importing this module imports no heavy backend (torch, vllm, httpx, ray,
redis); backends and probes load on demand through `contam.registry`.
"""

from contam.benchmarks import FieldMap, load_benchmark
from contam.errors import BenchmarkError, ContamError, InputError
from contam.models.base import Capabilities, ModelClient, ScoreRequest, ScoreResult
from contam.models.spec import ModelSpec
from contam.probe import Probe, ProbeContext
from contam.registry import create_model, get_probe, register_backend, register_probe
from contam.report import ScanReport
from contam.results import ProbeResult
from contam.runner import Runner
from contam.types import Benchmark, Item, Partition

__all__ = [
    "Benchmark",
    "BenchmarkError",
    "Capabilities",
    "ContamError",
    "FieldMap",
    "InputError",
    "Item",
    "ModelClient",
    "ModelSpec",
    "Partition",
    "Probe",
    "ProbeContext",
    "ProbeResult",
    "Runner",
    "ScanReport",
    "ScoreRequest",
    "ScoreResult",
    "create_model",
    "get_probe",
    "load_benchmark",
    "register_backend",
    "register_probe",
]

"""The model-release checklist: one YAML file naming a model, its benchmarks and the probes;
every partition gets a verdict, with the family-wise error held over the whole checklist, and
an exit code a release pipeline can gate on.

`load_checklist` reads and checks the file; `run_checklist` scans, decides and writes
`checklist.{json,md,html}` and one report per benchmark.
"""

from contam.checklist.config import BenchmarkEntry, ChecklistConfig, ProbeEntry, load_checklist
from contam.checklist.result import ChecklistLine, ChecklistResult
from contam.checklist.run import arun_checklist, run_checklist

__all__ = [
    "BenchmarkEntry",
    "ChecklistConfig",
    "ChecklistLine",
    "ChecklistResult",
    "ProbeEntry",
    "arun_checklist",
    "load_checklist",
    "run_checklist",
]

"""The testbed: small models trained with known benchmark contamination (ground truth for probes).

Importing this package stays light; torch, transformers and tokenizers load inside the build.
"""

from contam.testbed.build import BuildResult, build, read_build
from contam.testbed.config import FORMS, PRESETS, TESTBED_VERSION, BuildArgs, Preset

__all__ = ["FORMS", "PRESETS", "TESTBED_VERSION", "BuildArgs", "BuildResult", "Preset", "build", "read_build"]

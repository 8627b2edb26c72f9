"""Model clients. Backends are imported lazily through `contam.registry`."""

from contam.models.base import (
    Capabilities,
    ChatMessage,
    Completion,
    GenerateRequest,
    GenerateResult,
    ModelClient,
    ModelIdentity,
    ScoreRequest,
    ScoreResult,
    TokenAlternative,
)
from contam.models.spec import ModelSpec

__all__ = [
    "Capabilities",
    "ChatMessage",
    "Completion",
    "GenerateRequest",
    "GenerateResult",
    "ModelClient",
    "ModelIdentity",
    "ModelSpec",
    "ScoreRequest",
    "ScoreResult",
    "TokenAlternative",
]

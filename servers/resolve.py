"""The service's resolver: a reference in a request is the name of something registered in the
server's config, never a spec, a path or a URL.

`RegistryResolver` is the one place the service turns what a request names into a model or a
file, for probe parameters at any depth (`contam.resolve.references`) as for the request's own
`model`. Whatever a client sends, the answer depends only on the config: an unregistered name, a
spec (`openai:x@http://...`, `mock:calls=/tmp/x`) and a path get the same refusal, worded from the
value the client sent and the registered names, so it cannot tell what the server's disk holds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from contam.errors import InputError
from contam.resolve import FileRef, ModelRef, Reference, Resolver
from servers.settings import NAME_PATTERN, ServerSettings

if TYPE_CHECKING:
    from contam.cache import CallCache
    from contam.models.spec import ModelSpec

_NAME = re.compile(NAME_PATTERN)


class RegistryResolver(Resolver):
    def __init__(self, settings: ServerSettings, cache: CallCache | None = None) -> None:
        super().__init__(cache)
        self.settings = settings

    def _refused(self, ref: Reference, known: list[str]) -> InputError:
        # Not even the value is echoed: the answer is the same for every value that is not a
        # registered name, so nothing can be learnt from it but the registry itself.
        names = ", ".join(known) or "none"
        return InputError(
            f"not the name of a {ref.kind} registered on this server; a request names registered "
            f"{ref.kind} only, never a spec, a path or a URL (registered: {names})"
        )

    def model_spec(self, ref: ModelRef) -> ModelSpec:
        entry = self.settings.model(ref) if _NAME.match(ref) else None
        if entry is None:
            raise self._refused(ref, [m.name for m in self.settings.models])
        return entry.model_spec()  # its API key is read from its env var when the model opens

    def file_path(self, ref: FileRef) -> Path:
        if ref.kind != "templates":  # the only registered files so far
            raise self._refused(ref, [])
        entry = self.settings.template_set(ref) if _NAME.match(ref) else None
        if entry is None:
            raise self._refused(ref, [t.name for t in self.settings.templates])
        return entry.path


__all__ = ["RegistryResolver"]

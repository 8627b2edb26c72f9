"""References in probe parameters, and the resolver that turns them into things a probe can use.

Some probe parameters name something outside the request: a second model (`reference.model`,
`guided.judge`), a file (`guided.templates`). Their types say so: such a field is a `ModelRef` or
a `FileRef` (a `str` subclass, so it reads and serialises as the string it is), wherever it sits
in the parameters, nested models, lists and dicts included. A probe never opens what a reference
names itself; it asks `ProbeContext.resolver`, which the caller supplies:

- `LocalResolver` (the CLI, the library): the user owns the machine, so a model reference is a
  model spec (`hf:PATH`, `openai:NAME@URL`, ...) and a file reference a path.
- `servers.resolve.RegistryResolver` (the REST service): a reference is a *name* registered in
  the server's config, nothing else; a spec, a path or a URL is refused with the same answer
  whatever the server's disk holds.

So the rule lives in one place: a new probe that declares its references by type is covered by
both, and one that does not has no way to open a model or a file from its parameters.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from contam.errors import InputError, ModelSpecError

if TYPE_CHECKING:
    from contam.cache import CallCache
    from contam.models.base import ModelClient
    from contam.models.spec import ModelSpec
    from contam.runner import Runner

MAX_REFERENCE_CHARS = 4096


class Reference(str):
    """A parameter value that names something outside the request; `kind` says what."""

    kind: ClassVar[str] = "reference"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(min_length=1, max_length=MAX_REFERENCE_CHARS)
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        found = handler(schema)
        # Clients (and the service's OpenAPI) can tell a reference from free text by this key.
        found["x-contam-reference"] = cls.kind
        return found


class ModelRef(Reference):
    """A second model: a model spec on the command line, a registered model's name on the service."""

    kind = "model"


class FileRef(Reference):
    """A file: a path on the command line, a registered file's name on the service. Subclasses
    name their kind and how the file is read (`load`), so both resolvers read it the same way."""

    kind = "file"

    @classmethod
    def load(cls, path: Path) -> Any:
        return path


def references(value: Any, where: str = "") -> Iterator[tuple[str, Reference]]:
    """Every reference in `value` (validated parameters), at any depth, with its dotted path."""
    if isinstance(value, Reference):
        yield where, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from references(getattr(value, name), f"{where}.{name}" if where else name)
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            yield from references(inner, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple | set | frozenset):
        for i, inner in enumerate(value):
            yield from references(inner, f"{where}[{i}]")


class Resolver(ABC):
    """Resolves references for the probes of one scan (or one checklist).

    A model reference opens one runner over the scan's call cache, shared by every probe run in
    flight that names it (one load of the weights) and closed when the last of them finishes.
    """

    def __init__(self, cache: CallCache | None = None) -> None:
        self.cache = cache
        self._runners: dict[str, Runner] = {}
        self._users: dict[str, int] = {}
        self._loaded: dict[tuple[str, str], Any] = {}

    @abstractmethod
    def model_spec(self, ref: ModelRef) -> ModelSpec:
        """The spec `ref` stands for; `InputError` when it stands for nothing allowed."""

    @abstractmethod
    def file_path(self, ref: FileRef) -> Path:
        """The file `ref` stands for; `InputError` when it stands for nothing allowed."""

    def check(self, params: BaseModel, field: str) -> None:
        """Resolve every reference in `params` now, before any work; an error names
        `field.<the parameter's path>`, or the file and its field when a file is bad."""
        for where, ref in references(params):
            try:
                self._check(ref)
            except InputError as exc:
                if exc.path is not None:
                    raise
                raise InputError(exc.message, field=f"{field}.{where}") from None

    def _check(self, ref: Reference) -> None:
        if isinstance(ref, ModelRef):
            self.model_spec(ref)
        elif isinstance(ref, FileRef):
            self.file_path(ref)
        else:
            raise InputError(f"a {ref.kind} reference cannot be resolved here")

    def load(self, ref: FileRef, *, field: str) -> Any:
        """The file `ref` names, read by its type's `load` (once per resolver). A reference that
        names nothing allowed is an error naming `field`; a bad file, one naming the file."""
        key = (type(ref).kind, str(ref))
        if key not in self._loaded:
            try:
                path = self.file_path(ref)
            except InputError as exc:
                raise InputError(exc.message, field=field) from None
            self._loaded[key] = type(ref).load(path)
        return self._loaded[key]

    @contextlib.asynccontextmanager
    async def model(self, ref: ModelRef, *, field: str) -> AsyncIterator[ModelClient]:
        """The model `ref` names, behind a runner on this resolver's call cache; an error names
        `field`, the parameter that gave it."""
        from contam.registry import create_model
        from contam.runner import Runner

        key = str(ref)
        # Built synchronously: no other run can interleave between the check and the assignment.
        if key not in self._runners:
            try:
                spec = self.model_spec(ref)
            except InputError as exc:
                raise InputError(exc.message, field=field) from None
            self._runners[key] = Runner(create_model(spec), self.cache)
            self._users[key] = 0
        runner = self._runners[key]
        self._users[key] += 1
        try:
            yield runner
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                # A later run, after this close, builds a fresh one.
                del self._runners[key], self._users[key]
                await runner.aclose()


class LocalResolver(Resolver):
    """The CLI's and the library's: a model reference is a model spec, a file reference a path.
    `check` reads the files too, so a bad one fails before any model is opened."""

    def _check(self, ref: Reference) -> None:
        if isinstance(ref, FileRef):
            type(ref).load(self.file_path(ref))
        else:
            super()._check(ref)

    def model_spec(self, ref: ModelRef) -> ModelSpec:
        from contam.models.spec import ModelSpec

        try:
            return ModelSpec.parse(ref)
        except ModelSpecError as exc:
            raise InputError(exc.message) from None

    def file_path(self, ref: FileRef) -> Path:
        return Path(ref).expanduser()


__all__ = ["FileRef", "LocalResolver", "ModelRef", "Reference", "Resolver", "references"]

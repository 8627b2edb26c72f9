"""One error model for the whole API: RFC 9457 problem details, `application/problem+json`.

Every error a client can cause answers 4xx with a `Problem` naming what is wrong (and, for a
validation error, the field path: `benchmark.items[3].text`); only a fault of the server's own
answers 500, and that one says nothing about the internals.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contam.errors import InputError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("servers.problems")


class FieldProblem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(description="where: a dotted path into the body, or query.NAME / header.NAME")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(default="about:blank", description="a URI reference naming the kind of problem")
    title: str = Field(description="short, the same for every problem of this type")
    status: int = Field(ge=400, le=599)
    detail: str | None = Field(default=None, description="this occurrence, in words")
    instance: str | None = Field(default=None, description="the request path")
    field: str | None = Field(default=None, description="the first offending field, if any")
    errors: list[FieldProblem] | None = Field(default=None, description="every field problem found")


class ApiProblem(Exception):
    """Raised by services and dependencies; rendered by the handler below."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        field: str | None = None,
        errors: Sequence[FieldProblem] | None = None,
        headers: Mapping[str, str] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.field = field
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})
        self.title = title or HTTPStatus(status).phrase

    def problem(self, instance: str | None = None) -> Problem:
        return Problem(
            type=f"/problems/{self.slug}",
            title=self.title,
            status=self.status,
            detail=public_message(self.detail, "the request was refused"),
            instance=instance,
            field=self.field,
            errors=self.errors,
        )


MAX_FIELD_PATH = 200


def printable(text: str, limit: int = 64) -> str:
    """`text` safe to echo in an error: escaped where not printable (control characters, lone
    surrogates), and cut at `limit` characters, so a hostile key cannot fill or break the answer."""
    shown = text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= limit else shown[:limit] + "..."


def field_path(loc: Iterable[Any]) -> str:
    """`("body", "benchmark", "items", 3, "text")` as `benchmark.items[3].text`."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = printable(str(part))
            out += f".{name}" if out else name
        if len(out) > MAX_FIELD_PATH:  # a path into a deeply nested value: its start says where
            return out[:MAX_FIELD_PATH] + "..."
    return out or "body"


# What a message must not carry to a client: a traceback, a source location, the interpreter's own
# advice (int-string conversion), library names. pydantic passes on the text of any ValueError a
# validator lets through, and that text may come from deep inside the interpreter.
_INTERNALS = re.compile(
    r"Traceback|File \"|sys\.set_int_max_str_digits|int_max_str_digits|pydantic|pydantic_core|"
    r"errors\.pydantic\.dev|object at 0x|site-packages|<class '"
)


def public_message(message: str, fallback: str = "invalid value") -> str:
    """`message` if it is safe to show a client, else `fallback`."""
    return fallback if _INTERNALS.search(message) else message


def field_problems(errors: Iterable[Mapping[str, Any]], prefix: str = "") -> list[FieldProblem]:
    found = []
    for err in errors:
        path = field_path(err.get("loc", ()))
        if prefix:
            path = prefix if path == "body" else f"{prefix}.{path}"
        found.append(FieldProblem(field=path, message=public_message(str(err.get("msg", "invalid")))))
    return found


def invalid(errors: Sequence[FieldProblem], status: int = 422) -> ApiProblem:
    first = errors[0] if errors else FieldProblem(field="body", message="invalid")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ApiProblem(
        status,
        "validation-error",
        f"{first.field}: {first.message}{more}",
        field=first.field,
        errors=errors,
        title="Request validation failed",
    )


def from_validation_error(exc: ValidationError, prefix: str = "") -> ApiProblem:
    return invalid(field_problems(exc.errors(include_url=False), prefix))


def from_input_error(exc: InputError, field: str | None = None) -> ApiProblem:
    """A library input error (a benchmark row, a probe parameter) as a 422 naming where."""
    where = field or exc.field
    return ApiProblem(422, "invalid-input", public_message(str(exc)), field=where, title="Invalid input")


def _response(problem: Problem, headers: Mapping[str, str] | None = None) -> Response:
    from starlette.responses import Response

    # ASCII only: an escaped character always encodes, where a lone surrogate that reached a
    # message would make the UTF-8 encoding of the answer itself fail (a 500 with no problem body).
    content = problem.model_dump(mode="json", exclude_none=True)
    body = json.dumps(content, ensure_ascii=True, separators=(",", ":"))
    return Response(
        body.encode("ascii"), status_code=problem.status, media_type=PROBLEM_JSON, headers=dict(headers or {})
    )


def install(app: FastAPI) -> None:
    """Register the handlers: validation errors, HTTP errors (404 route, 405), ours, and the rest."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from servers.store.base import StoreError

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        return _response(exc.problem(request.url.path), exc.headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problem = invalid(field_problems(exc.errors())).problem(request.url.path)
        return _response(problem)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        phrase = HTTPStatus(exc.status_code).phrase
        slug = phrase.lower().replace(" ", "-").replace("'", "")
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
        detail = public_message(detail) if detail is not None else None
        problem = Problem(
            type=f"/problems/{slug}",
            title=phrase,
            status=exc.status_code,
            detail=detail,
            instance=request.url.path,
        )
        return _response(problem, exc.headers)

    async def on_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InputError)
        return _response(from_input_error(exc).problem(request.url.path))

    async def on_store(request: Request, exc: Exception) -> Response:
        # The store is down or locked: the server's trouble, for now; the client may retry.
        log.warning("store unavailable on %s %s: %s", request.method, request.url.path, exc)
        problem = Problem(
            type="/problems/store-unavailable",
            title="Service Unavailable",
            status=503,
            detail="the job store is unavailable; retry shortly",
            instance=request.url.path,
        )
        return _response(problem, {"Retry-After": "2"})

    async def on_crash(request: Request, exc: Exception) -> Response:
        # Logged here with the traceback; the client learns only that it was not its fault.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        problem = Problem(
            type="/problems/internal-error",
            title="Internal Server Error",
            status=500,
            detail="the server failed; the error is logged",
            instance=request.url.path,
        )
        return _response(problem)

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(InputError, on_input)
    app.add_exception_handler(StoreError, on_store)
    app.add_exception_handler(Exception, on_crash)


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problems an operation can answer, plus `default`."""
    ref = {"$ref": "#/components/schemas/Problem"}
    out: dict[int | str, dict[str, Any]] = {
        code: {"description": HTTPStatus(code).phrase, "content": {PROBLEM_JSON: {"schema": ref}}}
        for code in codes
    }
    out["default"] = {"description": "any other problem", "content": {PROBLEM_JSON: {"schema": ref}}}
    return out


def patch_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Put `Problem` in the components and replace FastAPI's own 422 body (HTTPValidationError, as
    application/json) with ours, so the schema says what the server really answers."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    ref = {"$ref": "#/components/schemas/Problem"}
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            responses = op.get("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "Request validation failed",
                    "content": {PROBLEM_JSON: {"schema": ref}},
                }
    return schema

"""Reading a request body within the server's size limit, and telling its content types apart.

The body is read in chunks and refused (413) as soon as it passes the limit, whatever the
Content-Length claimed, so a client cannot make the server buffer more than the limit.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Request

from servers.problems import ApiProblem

JSON = "application/json"
NDJSON = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
MULTIPART = "multipart/form-data"


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def too_large(limit: int) -> ApiProblem:
    return ApiProblem(413, "body-too-large", f"the request body is over this server's limit of {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def replay(request: Request, body: bytes) -> Request:
    """A request over the same scope whose body is `body` (already read, within the limit), so
    Starlette's multipart parser can read it again."""
    sent = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    reader: Callable[[], Awaitable[MutableMapping[str, Any]]] = receive
    return Request(request.scope, receive=reader)


def unsupported(got: str, allowed: tuple[str, ...]) -> ApiProblem:
    return ApiProblem(
        415,
        "unsupported-media-type",
        f"Content-Type {got or '(none)'!r} is not accepted here; send one of {', '.join(allowed)}",
        field="header.content-type",
    )


def _no_constant(name: str) -> Any:
    # Python's decoder takes NaN and Infinity, which JSON has not; refused, not stored.
    raise ValueError(f"{name} is not JSON")


def load_json(data: bytes, field: str) -> Any:
    try:
        return json.loads(data, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise ApiProblem(400, "malformed-body", f"not UTF-8 (byte {exc.start})", field=field) from None
    except json.JSONDecodeError as exc:
        raise ApiProblem(
            400,
            "malformed-body",
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            field=field,
        ) from None
    except ValueError as exc:  # NaN or Infinity (a JSONDecodeError is a ValueError too, caught above)
        raise ApiProblem(400, "malformed-body", f"malformed JSON: {exc}", field=field) from None
    except RecursionError:  # the C decoder's answer to "[[[[..." nested deeper than the stack
        raise ApiProblem(400, "malformed-body", "JSON nested too deeply", field=field) from None


def json_object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiProblem(
            422, "validation-error", f"expected a JSON object, got {type(value).__name__}", field=field
        )
    return value

"""Reading a request body within the server's size limit, and telling its content types apart.

The body is read in chunks and refused (413) as soon as it passes the limit, whatever the
Content-Length claimed, so a client cannot make the server buffer more than the limit. Parsing
happens in a worker thread (`stream_into`, `read_json_object`), never on the event loop, so one
client's large upload does not hold up every other client's requests.

JSON is read strictly (`decode_strict`): NaN, Infinity, numbers out of a float's range, integers
of more than `MAX_INT_DIGITS` digits, a key given twice in one object and strings that are not
valid Unicode (lone surrogates) are refused with the path of the value, e.g.
`benchmark.items[2].text`; Python's decoder would otherwise accept the first three, keep the last
of two keys, or answer with its own internals.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from servers.problems import ApiProblem, field_path, printable

JSON = "application/json"
NDJSON = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
MULTIPART = "multipart/form-data"

# Longer integers are refused: no field takes one, and Python refuses to convert past 4,300 digits
# with a message about its own settings.
MAX_INT_DIGITS = 64
# Bytes handed to the parsing thread at once: a few milliseconds of parsing per hop.
FEED_BYTES = 256 * 1024

T_co = TypeVar("T_co", covariant=True)


class Sink(Protocol[T_co]):
    """An incremental parser: `feed` takes the body's bytes as they arrive, `close` the result."""

    def feed(self, data: bytes) -> None: ...

    def close(self) -> T_co: ...


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def too_large(limit: int) -> ApiProblem:
    return ApiProblem(413, "body-too-large", f"the request body is over this server's limit of {limit} bytes")


def _declared_too_large(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)


async def read_body(request: Request, limit: int) -> bytes:
    _declared_too_large(request, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def stream_into(request: Request, limit: int, sink: Sink[T_co]) -> T_co:
    """Feed the body to `sink` in a worker thread as it arrives, `FEED_BYTES` at a time, and return
    what `sink.close()` makes of it. A sink that refuses its input (an item over the limit, a bad
    line) stops the read there: the rest of the body is never read."""
    _declared_too_large(request, limit)
    pending: list[bytes] = []
    held = size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        pending.append(chunk)
        held += len(chunk)
        if held >= FEED_BYTES:
            await run_in_threadpool(sink.feed, b"".join(pending))
            pending.clear()
            held = 0
    if pending:
        await run_in_threadpool(sink.feed, b"".join(pending))
    return await run_in_threadpool(sink.close)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, read within `limit` and decoded in a worker thread."""
    body = await read_body(request, limit)
    return await run_in_threadpool(lambda: json_object(load_json(body, "body"), "body"))


def replay(request: Request, body: bytes) -> Request:
    """A request over the same scope whose body is `body` (already read, within the limit), so
    Starlette's parsers can read it again."""
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


# --- strict JSON -----------------------------------------------------------------------------


class JsonRefused(ValueError):
    """A value that parses but is refused; `path` is where it is (keys and list indexes)."""

    def __init__(self, path: tuple[str | int, ...], why: str) -> None:
        super().__init__(why)
        self.path = path
        self.why = why


class _Refused:
    """Stands in for a refused value while the decoder runs, so the error can name its path."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _bad_text(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def decode_strict(text: str) -> Any:
    """`json.loads`, refusing what JSON or this server does not take (see the module's doc).
    Raises `json.JSONDecodeError`, `RecursionError` (nested too deeply) or `JsonRefused`."""
    refused = False

    def refuse(why: str) -> _Refused:
        nonlocal refused
        refused = True
        return _Refused(why)

    def constant(name: str) -> Any:
        return refuse(f"{name} is not a JSON number")

    def number(literal: str) -> Any:
        value = float(literal)
        return value if math.isfinite(value) else refuse("a number out of range")

    def integer(literal: str) -> Any:
        digits = len(literal) - literal.startswith("-")
        if digits > MAX_INT_DIGITS:
            return refuse(f"an integer of {digits} digits (at most {MAX_INT_DIGITS})")
        return int(literal)

    def pairs(items: list[tuple[str, Any]]) -> Any:
        obj = dict(items)
        if len(obj) != len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    return refuse(f"key {printable(key)!r} given twice")
                seen.add(key)
        return obj

    value = json.loads(
        text, parse_constant=constant, parse_float=number, parse_int=integer, object_pairs_hook=pairs
    )
    # Lone surrogates come as escapes ("\\ud800"): the walk runs only if one may be there.
    suspect = refused or _SURROGATE_ESCAPE.search(text) is not None
    found = _first_refused(value) if suspect else None
    if found is not None:
        raise JsonRefused(*found)
    return value


def _first_refused(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    """The first refused value or invalid string, in document order, with its path. Iterative,
    with parent links instead of path copies, so a deep or wide document costs one visit a node."""
    Link = tuple[Any, str | int] | None
    stack: list[tuple[Any, Link]] = [(value, None)]

    def path_of(link: Link) -> tuple[str | int, ...]:
        out: list[str | int] = []
        while link is not None:
            link, key = link
            out.append(key)
        return tuple(reversed(out))

    while stack:
        node, link = stack.pop()
        if isinstance(node, dict):
            for key in node:
                if _bad_text(key):
                    why = "a key that is not valid Unicode (a lone surrogate)"
                    return path_of((link, printable(key))), why
            stack.extend((v, (link, k)) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, (link, i)) for i, v in reversed(list(enumerate(node))))
        elif isinstance(node, _Refused):
            return path_of(link), node.why
        elif isinstance(node, str) and _bad_text(node):
            return path_of(link), "not valid Unicode (a lone surrogate)"
    return None


def load_json(data: bytes, field: str) -> Any:
    """A JSON body (UTF-8) decoded strictly; a problem names the line and column, or the field."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiProblem(400, "malformed-body", f"not UTF-8 (byte {exc.start})", field=field) from None
    try:
        return decode_strict(text)
    except json.JSONDecodeError as exc:
        raise ApiProblem(
            400,
            "malformed-body",
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            field=field,
        ) from None
    except JsonRefused as exc:
        where = field_path((field, *exc.path)) if field != "body" else field_path(exc.path)
        raise ApiProblem(422, "validation-error", f"{where}: {exc.why}", field=where) from None
    except RecursionError:  # the C decoder's answer to "[[[[..." nested deeper than the stack
        raise ApiProblem(400, "malformed-body", "JSON nested too deeply", field=field) from None


def json_object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiProblem(
            422, "validation-error", f"expected a JSON object, got {type(value).__name__}", field=field
        )
    return value

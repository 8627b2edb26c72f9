"""The three forms of `POST /v1/scans`, read into one `ScanRequest`.

- `application/json`: a `ScanRequest`.
- `application/x-ndjson`: the benchmark file itself, one item per line; the scan's settings as
  query parameters (`?model=mock&probe=loss&param=min_k.k=0.2&reference=unseen`).
- `multipart/form-data`: a `file` part (.jsonl, .json or .csv) and a `request` part holding
  `ScanOptions` as JSON.

A file goes through the library's loader (`servers.benchmarks.parse_file`), so a malformed line
is refused with its line number and field, as `contam scan FILE` would refuse it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.datastructures import UploadFile

from contam.errors import InputError
from servers.benchmarks import parse_file
from servers.intake import (
    JSON,
    MULTIPART,
    NDJSON,
    json_object,
    load_json,
    media_type,
    read_body,
    replay,
    too_large,
    unsupported,
)
from servers.problems import ApiProblem, from_input_error
from servers.scans.schemas import ScanRequest

if TYPE_CHECKING:
    from servers.scans.service import ScanService

# Query parameters of the JSONL form, each one ScanOptions field (repeatable ones are lists).
_REPEATED = {"probe": "probes", "partition": "partitions"}
_SINGLE = ("model", "reference", "alpha", "seed", "name", "format")


def _file_items(data: bytes, filename: str, part: str) -> list[dict[str, Any]]:
    try:
        return parse_file(data, filename=filename)
    except RecursionError:  # a line of "[[[[...": the JSON decoder runs out of stack
        raise ApiProblem(400, "malformed-body", f"{filename}: JSON nested too deeply", field=part) from None
    except InputError as exc:
        raise from_input_error(exc, field=f"{part}.{exc.field}" if exc.field else part) from None


def _query_options(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ScanOptions fields, benchmark fields) from the JSONL form's query parameters."""
    q = request.query_params
    unknown = sorted(set(q) - set(_REPEATED) - set(_SINGLE) - {"param"})
    if unknown:
        raise ApiProblem(
            422, "validation-error", f"unknown query parameter {unknown[0]!r}", field=f"query.{unknown[0]}"
        )
    options: dict[str, Any] = {k: q[k] for k in ("model", "reference", "alpha", "seed") if k in q}
    probes = q.getlist("probe")
    params: dict[str, dict[str, Any]] = {}
    for pair in q.getlist("param"):
        key, eq, value = pair.partition("=")
        probe, dot, name = key.partition(".")
        if not eq or not dot or not probe or not name:
            raise ApiProblem(422, "validation-error", f"{pair!r} is not PROBE.KEY=VALUE", field="query.param")
        if probe not in probes:
            raise ApiProblem(
                422,
                "validation-error",
                f"a parameter for probe {probe!r}, which is not run",
                field="query.param",
            )
        params.setdefault(probe, {})[name] = value
    if probes:
        options["probes"] = [{"name": p, "params": params.get(p, {})} for p in probes]
    if q.getlist("partition"):
        options["partitions"] = q.getlist("partition")
    bench = {k: q[k] for k in ("name", "format") if k in q}
    return options, bench


async def read_scan_request(request: Request, service: ScanService) -> ScanRequest:
    limit = service.settings.limits.max_body_bytes
    kind = media_type(request)
    if kind == JSON:
        if request.query_params:
            first = next(iter(request.query_params))
            raise ApiProblem(
                422, "validation-error", "query parameters go with a JSONL body only", field=f"query.{first}"
            )
        data = json_object(load_json(await read_body(request, limit), "body"), "body")
        return service.parse(data)
    if kind in NDJSON:
        options, bench = _query_options(request)
        body = await read_body(request, limit)
        bench["items"] = _file_items(body, "body.jsonl", "body")
        return service.parse({**options, "benchmark": bench})
    if kind == MULTIPART:
        return service.parse(await _multipart(request, limit))
    raise unsupported(kind, (JSON, NDJSON[0], MULTIPART))


async def _multipart(request: Request, limit: int) -> dict[str, Any]:
    from starlette.formparsers import MultiPartException

    body = await read_body(request, limit)
    try:
        form = await replay(request, body).form(max_files=1, max_fields=4, max_part_size=limit)
    except MultiPartException as exc:
        raise ApiProblem(
            400, "malformed-body", f"malformed multipart body: {exc.message}", field="body"
        ) from None
    try:
        unknown = sorted(set(form) - {"request", "file"})
        if unknown:
            raise ApiProblem(
                422,
                "validation-error",
                f"unknown form part {unknown[0]!r} (parts: request, file)",
                field=unknown[0],
            )
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiProblem(
                422, "validation-error", "a `file` part with the benchmark is required", field="file"
            )
        raw = form.get("request")
        options: dict[str, Any] = {}
        if raw is not None:
            text = raw.encode() if isinstance(raw, str) else await raw.read()
            options = json_object(load_json(text, "request"), "request")
        data = await upload.read()
        if len(data) > limit:
            raise too_large(limit)
        bench = json_object(options.pop("benchmark", {}), "request.benchmark")
        bench["items"] = _file_items(data, upload.filename or "upload.jsonl", "file")
        return {**options, "benchmark": bench}
    finally:
        await form.close()


def scan_request_body() -> dict[str, Any]:
    """The OpenAPI requestBody of the three forms."""
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ScanRequest"}},
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "one JSON object (an item) per line"},
                "example": '{"id": "a1", "partition": "test", "text": "2 + 2 = 4"}\n'
                '{"id": "u1", "partition": "unseen", "text": "3 + 5 = 8"}\n',
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": ".jsonl, .json or .csv",
                        },
                        "request": {"type": "string", "description": "ScanOptions as JSON"},
                    },
                }
            },
        },
    }


def ndjson_parameters() -> list[dict[str, Any]]:
    def param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": f"with an application/x-ndjson body only: {description}",
        }

    name = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
    return [
        param("model", name, "the registered model"),
        param("probe", {"type": "array", "items": {"type": "string"}}, "a probe to run (repeatable)"),
        param("param", {"type": "array", "items": {"type": "string"}}, "PROBE.KEY=VALUE (repeatable)"),
        param(
            "partition", {"type": "array", "items": {"type": "string"}}, "a partition to test (repeatable)"
        ),
        param("reference", {"type": "string"}, "the reference partition"),
        param("alpha", {"type": "number"}, "family-wise error rate"),
        param("seed", {"type": "integer"}, "seed"),
        param("name", name, "the benchmark's name in the report"),
        param("format", {"type": "string", "enum": ["text", "qa", "mc"]}, "the items' format"),
    ]

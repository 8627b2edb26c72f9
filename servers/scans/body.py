"""The three forms of `POST /v1/scans`, read into one `ScanRequest`.

- `application/json`: a `ScanRequest`.
- `application/x-ndjson`: the benchmark file itself, one item per line; the scan's settings as
  query parameters (`?model=mock&probe=loss&param=min_k.k=0.2&reference=unseen`), each at most once
  (but `probe`, `param` and `partition`, which repeat).
- `multipart/form-data`: a `file` part (.jsonl, .json or .csv) and a `request` part holding
  `ScanOptions` as JSON.

Every form is parsed and validated in a worker thread, a JSONL body or file line by line as it
arrives (`servers.uploads`), so an upload never holds up the event loop and one over the item
limit is refused at the first line past it. A file's rows are validated as JSON items are
(`UploadedItem`), and a bad line is refused with its line number and field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from servers.intake import (
    JSON,
    MULTIPART,
    NDJSON,
    json_object,
    load_json,
    media_type,
    read_body,
    stream_into,
    unsupported,
)
from servers.problems import ApiProblem
from servers.scans.schemas import ScanRequest, UploadLimits
from servers.uploads import ItemRows, JsonlReader, MultipartReader

if TYPE_CHECKING:
    from servers.scans.service import ScanService

# Query parameters of the JSONL form, each one ScanOptions field (repeatable ones are lists).
_REPEATED = {"probe": "probes", "partition": "partitions"}
_SINGLE = ("model", "reference", "alpha", "seed", "name", "format")


def _query_options(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ScanOptions fields, benchmark fields) from the JSONL form's query parameters."""
    q = request.query_params
    unknown = sorted(set(q) - set(_REPEATED) - set(_SINGLE) - {"param"})
    if unknown:
        raise ApiProblem(
            422, "validation-error", f"unknown query parameter {unknown[0]!r}", field=f"query.{unknown[0]}"
        )
    for name in _SINGLE:
        if len(q.getlist(name)) > 1:
            raise ApiProblem(
                422, "validation-error", f"query parameter {name!r} is given twice", field=f"query.{name}"
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
        if name in params.get(probe, {}):
            raise ApiProblem(
                422, "validation-error", f"parameter {probe}.{name} is given twice", field="query.param"
            )
        params.setdefault(probe, {})[name] = value
    if probes:
        options["probes"] = [{"name": p, "params": params.get(p, {})} for p in probes]
    if q.getlist("partition"):
        options["partitions"] = q.getlist("partition")
    bench = {k: q[k] for k in ("name", "format") if k in q}
    return options, bench


def _json_request(body: bytes, limits: UploadLimits) -> dict[str, Any]:
    """A JSON body as a dict; items over the limit are refused by their count, before any of
    them is validated."""
    data = json_object(load_json(body, "body"), "body")
    bench = data.get("benchmark")
    items = bench.get("items") if isinstance(bench, dict) else None
    if isinstance(items, list) and len(items) > limits.max_items:
        raise ApiProblem(
            422,
            "validation-error",
            f"benchmark.items: {len(items)} items, more than this server's limit of {limits.max_items}",
            field="benchmark.items",
            title="Request validation failed",
        )
    return data


async def read_scan_request(request: Request, service: ScanService) -> ScanRequest:
    from servers.scans.service import upload_limits

    limits = upload_limits(service.settings)
    limit = limits.max_body_bytes
    kind = media_type(request)
    if kind == JSON:
        if request.query_params:
            first = next(iter(request.query_params))
            raise ApiProblem(
                422, "validation-error", "query parameters go with a JSONL body only", field=f"query.{first}"
            )
        body = await read_body(request, limit)
        data = await run_in_threadpool(_json_request, body, limits)
    elif kind in NDJSON:
        options, bench = _query_options(request)
        items = await stream_into(request, limit, JsonlReader(ItemRows(limits, "body.jsonl", "body")))
        data = {**options, "benchmark": {**bench, "items": items}}
    elif kind == MULTIPART:
        data = await stream_into(request, limit, MultipartReader(request.headers["content-type"], limits))
    else:
        raise unsupported(kind, (JSON, NDJSON[0], MULTIPART))
    return await run_in_threadpool(service.parse, data)


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

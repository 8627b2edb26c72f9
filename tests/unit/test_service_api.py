"""The REST API through FastAPI's TestClient over a real SQLite store in tmp_path: authentication,
tenant isolation, upload validation (nothing stored on a refusal), idempotency, pagination,
limits, and problem+json on every error. No workers run here: jobs stay queued unless a test
finishes one itself through the store, as a worker would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from servers.app import create_app
from servers.settings import ServerSettings
from servers.store import open_store
from servers.store.base import JobStore
from servers.timing import app_ms

UPSTREAM_SECRET = "sk-upstream-do-not-leak-4242"
UPSTREAM_URL = "http://10.11.12.13:9999/v1"

ITEMS = [
    {"id": "s1", "partition": "test", "text": "The quick brown fox jumps over the lazy dog."},
    {"id": "s2", "partition": "test", "text": "A stitch in time saves nine, they say."},
    {"id": "u1", "partition": "unseen", "text": "Colourless green ideas sleep furiously tonight."},
    {"id": "u2", "partition": "unseen", "text": "Seven slim swans swam silently southward."},
]


def scan_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "benchmark": {"name": "mine", "items": ITEMS},
        "model": "mock",
        "reference": "unseen",
    }
    body.update(over)
    return body


class Api:
    def __init__(self, client: TestClient, store: JobStore, keys: dict[str, str]) -> None:
        self.client = client
        self.store = store
        self.keys = keys

    def h(self, who: str = "alice", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}

    def jobs(self, owner: str = "alice") -> list[Any]:
        return self.store.list_jobs(owner, 1000)[0]


def make_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **limits: Any) -> Iterator[Api]:
    monkeypatch.setenv("CONTAM_TEST_UPSTREAM_KEY", UPSTREAM_SECRET)
    settings = ServerSettings(
        store=f"sqlite:///{tmp_path / 'jobs.sqlite'}",
        cache_path=tmp_path / "calls.sqlite",
        models=(
            {"name": "mock", "spec": "mock"},
            {
                "name": "remote",
                "spec": f"openai:tiny@{UPSTREAM_URL}",
                "api_key_env": "CONTAM_TEST_UPSTREAM_KEY",
                "description": "a remote model",
            },
        ),
        limits={"rate_per_s": 1000.0, "burst": 1000, **limits},
    )
    store = open_store(settings.store)
    keys = {owner: store.create_key(owner)[1] for owner in ("alice", "bob")}
    revoked, secret = store.create_key("carol")
    store.revoke_key(revoked.key_id)
    keys["carol"] = secret
    with TestClient(create_app(settings, store=store, workers=0), raise_server_exceptions=False) as client:
        yield Api(client, store, keys)
    store.close()


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    yield from make_api(tmp_path, monkeypatch)


def assert_problem(
    resp: Any, status: int, *, field: str | None = None, says: str | None = None
) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status and body["title"] and body["type"]
    if field is not None:
        assert body.get("field") == field, body
    if says is not None:
        assert says in body.get("detail", ""), body
    return body


def submit(api: Api, body: dict[str, Any] | None = None, who: str = "alice", **headers: str) -> Any:
    return api.client.post("/v1/scans", json=body or scan_body(), headers=api.h(who, **headers))


# --- authentication and tenants ---------------------------------------------------------------


def test_health_needs_no_key(api: Api) -> None:
    assert api.client.get("/healthz").json()["status"] == "ok"
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["store"] is True


@pytest.mark.parametrize("path", ["/v1/scans", "/v1/models", "/v1/benchmarks", "/v1/indexes"])
def test_no_key_is_401(api: Api, path: str) -> None:
    resp = api.client.get(path)
    assert_problem(resp, 401)
    assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("token", ["nonsense", "ck_0123456789abcdef_wrongsecret", ""])
def test_wrong_key_is_401(api: Api, token: str) -> None:
    assert_problem(api.client.get("/v1/scans", headers={"Authorization": f"Bearer {token}"}), 401)


def test_a_wrong_secret_for_a_real_key_id_is_401(api: Api) -> None:
    real = api.keys["alice"]
    assert_problem(api.client.get("/v1/scans", headers={"Authorization": f"Bearer {real[:-4]}AAAA"}), 401)


def test_revoked_key_is_401(api: Api) -> None:
    assert_problem(api.client.get("/v1/scans", headers=api.h("carol")), 401, says="not valid")
    assert_problem(submit(api, who="carol"), 401)
    assert api.jobs("carol") == []


def test_revoking_a_key_locks_it_out_within_the_key_cache_ttl(api: Api) -> None:
    cache = api.client.app.state.contam.key_cache  # type: ignore[attr-defined]
    now = [1000.0]
    cache.clock = lambda: now[0]
    assert api.client.get("/v1/scans", headers=api.h()).status_code == 200
    key_id = api.store.authenticate(api.keys["alice"]).key_id  # type: ignore[union-attr]
    assert api.store.revoke_key(key_id)
    now[0] += cache.ttl_s  # the verified key is remembered no longer than this
    assert_problem(api.client.get("/v1/scans", headers=api.h()), 401)
    assert_problem(api.client.get("/v1/scans", headers=api.h()), 401)  # and a refusal is never remembered


def test_a_key_is_verified_once_per_ttl(api: Api) -> None:
    calls = []
    real = api.store.authenticate

    def counting(token: str) -> Any:
        calls.append(token)
        return real(token)

    api.client.app.state.contam.store.authenticate = counting  # type: ignore[attr-defined]
    cache = api.client.app.state.contam.key_cache  # type: ignore[attr-defined]
    now = [0.0]
    cache.clock = lambda: now[0]
    for _ in range(5):
        assert api.client.get("/v1/scans", headers=api.h()).status_code == 200
    assert len(calls) == 1
    now[0] += cache.ttl_s
    assert api.client.get("/v1/scans", headers=api.h()).status_code == 200
    assert len(calls) == 2
    for _ in range(3):  # a wrong key is checked every time
        assert_problem(
            api.client.get("/v1/scans", headers={"Authorization": "Bearer ck_0123456789abcdef_x"}), 401
        )
    assert len(calls) == 5


def test_another_owners_job_is_404_as_if_missing(api: Api) -> None:
    job_id = submit(api).json()["id"]
    missing = assert_problem(api.client.get(f"/v1/scans/{'f' * 32}", headers=api.h("bob")), 404)
    theirs = assert_problem(api.client.get(f"/v1/scans/{job_id}", headers=api.h("bob")), 404)
    assert {k: v for k, v in missing.items() if k not in ("detail", "instance")} == {
        k: v for k, v in theirs.items() if k not in ("detail", "instance")
    }
    assert_problem(api.client.get(f"/v1/scans/{job_id}/report", headers=api.h("bob")), 404)
    assert_problem(api.client.delete(f"/v1/scans/{job_id}", headers=api.h("bob")), 404)
    assert api.client.get("/v1/scans", headers=api.h("bob")).json()["items"] == []
    # bob's DELETE changed nothing
    assert api.client.get(f"/v1/scans/{job_id}", headers=api.h()).json()["status"] == "queued"


# --- submit, status, cancel -----------------------------------------------------------------


def test_submit_answers_202_with_location_and_queues_the_job(api: Api) -> None:
    resp = submit(api)
    assert resp.status_code == 202
    body = resp.json()
    assert resp.headers["location"] == f"/v1/scans/{body['id']}" == body["status_url"]
    status = api.client.get(resp.headers["location"], headers=api.h()).json()
    assert status["status"] == "queued" and status["progress"]["items_done"] == 0
    assert status["request"]["benchmark"] == {"name": "mine", "uploaded_items": 4}
    (job,) = api.jobs()
    assert job.request["benchmark"]["items"][0]["text"] == ITEMS[0]["text"]


def test_cancel_a_queued_scan(api: Api) -> None:
    job_id = submit(api).json()["id"]
    resp = api.client.delete(f"/v1/scans/{job_id}", headers=api.h())
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    assert_problem(api.client.get(f"/v1/scans/{job_id}/report", headers=api.h()), 409, says="cancelled")


def test_report_before_done_is_409(api: Api) -> None:
    job_id = submit(api).json()["id"]
    assert_problem(api.client.get(f"/v1/scans/{job_id}/report", headers=api.h()), 409, says="queued")


def test_a_finished_scan_serves_its_report_as_json_markdown_and_html(api: Api) -> None:
    from contam.cache import CallCache
    from contam.models.mock import MockModel
    from contam.runner import Runner
    from contam.scan import scan
    from probes.loss import LossProbe
    from servers.benchmarks import open_benchmark
    from servers.scans.schemas import BenchmarkSpec

    job_id = submit(api).json()["id"]
    bench = open_benchmark(BenchmarkSpec.model_validate({"name": "mine", "items": ITEMS}))
    runner = Runner(MockModel(), CallCache(None))
    report = asyncio.run(
        scan(
            bench,
            runner,
            [LossProbe.from_options({})],
            model_spec="mock",
            reference=bench.partition("unseen"),
            reference_label="unseen",
        )
    )
    claimed = api.store.claim("w1", 30.0)
    assert claimed is not None and claimed.id == job_id
    api.store.finish(job_id, "w1", report.model_dump_json())

    as_json = api.client.get(f"/v1/scans/{job_id}/report", headers=api.h())
    assert as_json.status_code == 200 and as_json.headers["content-type"].startswith("application/json")
    assert as_json.json()["benchmark"]["name"] == "mine"
    md = api.client.get(f"/v1/scans/{job_id}/report?format=md", headers=api.h())
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "mine" in md.text
    html = api.client.get(f"/v1/scans/{job_id}/report?format=html", headers=api.h())
    assert html.status_code == 200 and html.text.lstrip().lower().startswith("<!doctype html")
    assert_problem(
        api.client.get(f"/v1/scans/{job_id}/report?format=pdf", headers=api.h()), 422, field="query.format"
    )
    status = api.client.get(f"/v1/scans/{job_id}", headers=api.h()).json()
    assert status["status"] == "done" and status["report_url"] == f"/v1/scans/{job_id}/report"


# --- bad input: a 4xx naming the problem, and nothing stored --------------------------------


def refused(api: Api, resp: Any, status: int, **kw: Any) -> dict[str, Any]:
    body = assert_problem(resp, status, **kw)
    assert api.jobs() == [], "a refused request must store nothing"
    return body


def test_malformed_jsonl_names_the_line(api: Api) -> None:
    lines = b'{"id": "s1", "partition": "test", "text": "fine"}\n{"id": "u1", "partition": "unseen", "text": oops}\n'
    resp = api.client.post(
        "/v1/scans?model=mock&reference=unseen",
        content=lines,
        headers=api.h(**{"Content-Type": "application/x-ndjson"}),
    )
    body = refused(api, resp, 422, says="body.jsonl:2")
    assert "malformed JSON" in body["detail"]


def test_jsonl_row_missing_a_field_names_line_and_field(api: Api) -> None:
    lines = b'{"id": "a", "prompt": "2+2", "reference": "4"}\n{"id": "b", "prompt": "3+3"}\n'
    resp = api.client.post(
        "/v1/scans?model=mock", content=lines, headers=api.h(**{"Content-Type": "application/x-ndjson"})
    )
    body = refused(api, resp, 422, says="body.jsonl:2")
    assert body["field"] == "body.reference"


def test_a_good_jsonl_body_is_accepted_with_query_settings(api: Api) -> None:
    lines = "".join(json.dumps(i) + "\n" for i in ITEMS).encode()
    resp = api.client.post(
        "/v1/scans?model=mock&reference=unseen&probe=loss&probe=min_k&param=min_k.k=0.3&name=lines",
        content=lines,
        headers=api.h(**{"Content-Type": "application/x-ndjson"}),
    )
    assert resp.status_code == 202, resp.text
    (job,) = api.jobs()
    assert job.request["probes"] == [
        {"name": "loss", "params": {}},
        {"name": "min_k", "params": {"k": "0.3"}},
    ]
    assert job.request["benchmark"]["name"] == "lines" and len(job.request["benchmark"]["items"]) == 4


def test_multipart_upload(api: Api) -> None:
    data = "".join(json.dumps(i) + "\n" for i in ITEMS).encode()
    resp = api.client.post(
        "/v1/scans",
        headers=api.h(),
        files={"file": ("bench.jsonl", data, "application/octet-stream")},
        data={"request": json.dumps({"model": "mock", "reference": "unseen"})},
    )
    assert resp.status_code == 202, resp.text
    assert api.jobs()[0].request["benchmark"]["items"][3]["id"] == "u2"


def test_multipart_without_a_file_part(api: Api) -> None:
    resp = api.client.post(
        "/v1/scans", headers=api.h(), files={"request": (None, json.dumps({"model": "mock"}))}
    )
    refused(api, resp, 422, field="file")


def test_multipart_file_of_a_refused_type(api: Api) -> None:
    resp = api.client.post(
        "/v1/scans",
        headers=api.h(),
        files={"file": ("b.parquet", b"PAR1....", "application/octet-stream")},
        data={"request": json.dumps({"model": "mock"})},
    )
    refused(api, resp, 422, says="unsupported file type")


def test_oversize_body_is_413(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for api in make_api(tmp_path, monkeypatch, max_body_bytes=4096):
        big = scan_body(benchmark={"items": [{"text": "word " * 2000}]})
        refused(api, submit(api, big), 413, says="4096 bytes")

        # without a Content-Length (chunked), the limit holds while reading
        def chunks() -> Iterator[bytes]:
            yield b'{"benchmark": {"items": [{"text": "'
            for _ in range(100):
                yield b"x" * 100
            yield b'"}]}, "model": "mock"}'

        resp = api.client.post(
            "/v1/scans", content=chunks(), headers=api.h(**{"Content-Type": "application/json"})
        )
        refused(api, resp, 413)


def test_wrong_content_type_is_415(api: Api) -> None:
    resp = api.client.post(
        "/v1/scans", content=b"model=mock", headers=api.h(**{"Content-Type": "text/plain"})
    )
    refused(api, resp, 415, field="header.content-type")
    resp = api.client.post("/v1/scans", content=b"{}", headers=api.h())  # no Content-Type at all
    refused(api, resp, 415)


def test_huge_field_names_the_field_and_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for api in make_api(tmp_path, monkeypatch, max_field_chars=100):
        items = [dict(ITEMS[0]), *ITEMS[1:]]
        items[2] = {**items[2], "text": "z" * 101}
        body = refused(
            api, submit(api, scan_body(benchmark={"items": items})), 422, field="benchmark.items[2].text"
        )
        assert "limit of 100" in body["detail"]


def test_too_many_items(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for api in make_api(tmp_path, monkeypatch, max_items=3):
        refused(api, submit(api), 422, field="benchmark.items", says="limit of 3")


def test_unregistered_model(api: Api) -> None:
    body = refused(api, submit(api, scan_body(model="gpt-17")), 422, field="model")
    assert "not" in body["detail"] or "no model" in body["detail"]
    assert "mock" in body["detail"]  # says what is registered


@pytest.mark.parametrize(
    "model",
    [
        "http://169.254.169.254/latest/meta-data",
        "openai:x@http://127.0.0.1:22/v1",
        "hf:/etc",
        "../../../etc/passwd",
        "mock:seen=/etc/passwd",
        "a" * 65,
    ],
)
def test_a_url_or_path_as_model_name_is_refused(api: Api, model: str) -> None:
    refused(api, submit(api, scan_body(model=model)), 422, field="model")


@pytest.mark.parametrize("name", ["/etc/passwd", "../shared/data/gsm8k", "C:\\x", "file:///etc/passwd"])
def test_a_path_as_benchmark_name_is_refused(api: Api, name: str) -> None:
    refused(api, submit(api, scan_body(benchmark={"name": name})), 422, field="benchmark.name")


def test_unknown_builtin_benchmark_names_the_known_ones(api: Api) -> None:
    body = refused(api, submit(api, scan_body(benchmark={"name": "mmlu"}, reference=None)), 422)
    assert body["field"] == "benchmark.name" and "humaneval" in body["detail"]


def test_a_path_as_reference_is_refused(api: Api) -> None:
    refused(api, submit(api, scan_body(reference="/etc/passwd")), 422, field="reference")


def test_unknown_partition_and_reference(api: Api) -> None:
    refused(
        api,
        submit(api, scan_body(partitions=["valid"])),
        422,
        field="partitions[0]",
        says="has: test, unseen",
    )
    refused(api, submit(api, scan_body(reference="heldout")), 422, field="reference")


def test_unknown_probe_and_bad_probe_params(api: Api) -> None:
    refused(api, submit(api, scan_body(probes=[{"name": "nope"}])), 422, field="probes[0].name")
    refused(
        api,
        submit(api, scan_body(probes=[{"name": "min_k", "params": {"k": 7}}])),
        422,
        field="probes[0].params.k",
    )
    refused(
        api, submit(api, scan_body(probes=[{"name": "loss"}, {"name": "loss"}])), 422, field="probes[1].name"
    )


def test_unknown_fields_are_refused(api: Api) -> None:
    refused(api, submit(api, scan_body(base_url="http://10.0.0.1/")), 422, field="base_url")
    items = [{**ITEMS[0], "path": "/etc/passwd"}, *ITEMS[1:]]
    refused(api, submit(api, scan_body(benchmark={"items": items})), 422, field="benchmark.items[0].path")


def test_semantic_item_errors_name_the_item(api: Api) -> None:
    items = [{"id": "q1", "prompt": "Pick", "choices": ["a", "b"], "answer_index": 5}]
    refused(api, submit(api, scan_body(benchmark={"items": items}, reference=None)), 422)
    dup = [ITEMS[0], {**ITEMS[1], "id": "s1"}]
    body = refused(api, submit(api, scan_body(benchmark={"items": dup}, reference=None)), 422)
    assert body["field"] == "benchmark.items[1].id" and "duplicate id" in body["detail"]


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b"", b"[" * 100_000, b'{"a":' * 50_000]
)
def test_malformed_json_body(api: Api, raw: bytes) -> None:
    resp = api.client.post("/v1/scans", content=raw, headers=api.h(**{"Content-Type": "application/json"}))
    assert resp.status_code in (400, 422)
    refused(api, resp, resp.status_code)


def test_bad_path_and_query_values_are_problems(api: Api) -> None:
    assert_problem(api.client.get("/v1/scans/not-a-job-id", headers=api.h()), 422, field="path.job_id")
    assert_problem(api.client.get("/v1/scans?limit=0", headers=api.h()), 422, field="query.limit")
    assert_problem(api.client.get("/v1/scans?cursor=abc", headers=api.h()), 422, field="query.cursor")
    assert_problem(api.client.get("/v1/nothing-here", headers=api.h()), 404)
    assert_problem(api.client.put("/v1/scans", headers=api.h()), 405)


# --- idempotency, pagination, limits --------------------------------------------------------


def test_idempotency_key_returns_the_same_job(api: Api) -> None:
    first = submit(api, **{"Idempotency-Key": "run-2026-12-01"})
    again = submit(api, **{"Idempotency-Key": "run-2026-12-01"})
    assert first.status_code == 202 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"] and again.json()["created"] is False
    assert len(api.jobs()) == 1
    # the same key from another owner is another job
    assert submit(api, who="bob", **{"Idempotency-Key": "run-2026-12-01"}).json()["id"] != first.json()["id"]


def test_idempotency_key_reused_for_another_request_is_409(api: Api) -> None:
    submit(api, **{"Idempotency-Key": "k1"})
    assert_problem(
        submit(api, scan_body(seed=7), **{"Idempotency-Key": "k1"}), 409, field="header.idempotency-key"
    )
    assert len(api.jobs()) == 1


def test_pagination_walks_every_job_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for api in make_api(tmp_path, monkeypatch, max_active_jobs=20):
        ids = [submit(api, scan_body(seed=i)).json()["id"] for i in range(5)]
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = api.client.get("/v1/scans", params=params, headers=api.h()).json()
            pages += 1
            seen += [s["id"] for s in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert pages < 10
        assert pages == 3 and seen == ids[::-1]  # newest first, each once


def test_rate_limit_is_429_with_retry_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for api in make_api(tmp_path, monkeypatch, rate_per_s=0.01, burst=3):
        for _ in range(3):
            assert api.client.get("/v1/scans", headers=api.h()).status_code == 200
        resp = api.client.get("/v1/scans", headers=api.h())
        assert_problem(resp, 429)
        assert int(resp.headers["retry-after"]) >= 1
        # another key has its own bucket
        assert api.client.get("/v1/scans", headers=api.h("bob")).status_code == 200


def test_concurrent_job_limit_per_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for api in make_api(tmp_path, monkeypatch, max_active_jobs=2):
        assert submit(api, scan_body(seed=1)).status_code == 202
        assert submit(api, scan_body(seed=2)).status_code == 202
        resp = submit(api, scan_body(seed=3))
        assert_problem(resp, 429, says="2 queued or running")
        assert "retry-after" in resp.headers
        assert len(api.jobs()) == 2
        assert submit(api, scan_body(seed=3), who="bob").status_code == 202  # per key
        api.client.delete(f"/v1/scans/{api.jobs()[0].id}", headers=api.h())
        assert submit(api, scan_body(seed=3)).status_code == 202  # a slot freed


# --- catalog and secrets ----------------------------------------------------------------------


def test_catalog_lists_names_never_specs_or_keys(api: Api) -> None:
    resp = api.client.get("/v1/models", headers=api.h())
    assert resp.json()["items"] == [
        {"name": "mock", "backend": "mock", "description": ""},
        {"name": "remote", "backend": "openai", "description": "a remote model"},
    ]
    assert UPSTREAM_URL not in resp.text and "10.11.12.13" not in resp.text
    assert "humaneval" in {
        b["name"] for b in api.client.get("/v1/benchmarks", headers=api.h()).json()["items"]
    }
    assert api.client.get("/v1/indexes", headers=api.h()).json() == {"items": []}


def test_upstream_key_and_url_never_in_any_response(api: Api) -> None:
    texts = []
    resp = submit(api, scan_body(model="remote"))
    texts.append(resp.text)
    job_id = resp.json()["id"]
    for path in ("/v1/scans", f"/v1/scans/{job_id}", "/v1/models", "/openapi.json"):
        texts.append(api.client.get(path, headers=api.h()).text)
    texts.append(submit(api, scan_body(model="remote", probes=[{"name": "nope"}])).text)
    for text in texts:
        assert UPSTREAM_SECRET not in text and UPSTREAM_URL not in text
    assert UPSTREAM_SECRET not in json.dumps(api.jobs()[0].request)


def test_openapi_documents_problems_and_examples(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    assert "Problem" in schema["components"]["schemas"]
    post = schema["paths"]["/v1/scans"]["post"]
    assert set(post["requestBody"]["content"]) == {
        "application/json",
        "application/x-ndjson",
        "multipart/form-data",
    }
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert schema["components"]["schemas"]["ScanRequest"]["examples"]
    assert api.client.get("/docs").status_code == 200


def test_uploaded_rows_without_ids_get_distinct_default_ids(api: Api) -> None:
    data = (
        b'{"text": "first text here", "partition": "test"}\n{"text": "second one", "partition": "unseen"}\n'
    )
    resp = api.client.post(
        "/v1/scans",
        headers=api.h(),
        files={"file": ("b.jsonl", data)},
        data={"request": json.dumps({"model": "mock", "reference": "unseen"})},
    )
    assert resp.status_code == 202, resp.text
    ids = [i["id"] for i in api.jobs()[0].request["benchmark"]["items"]]
    assert ids == ["upload-00000", "upload-00001"]


def test_deeply_nested_json_in_a_jsonl_body_or_a_probe_parameter(api: Api) -> None:
    resp = api.client.post(
        "/v1/scans?model=mock",
        content=b"[" * 100_000 + b"\n",
        headers=api.h(**{"Content-Type": "application/x-ndjson"}),
    )
    refused(api, resp, 400, field="body")
    nested: Any = 1
    for _ in range(300):
        nested = [nested]
    resp = submit(api, scan_body(probes=[{"name": "loss", "params": {"deep": nested}}]))
    assert 400 <= resp.status_code < 500
    refused(api, resp, resp.status_code)


def test_an_unavailable_store_is_503_with_retry_after(api: Api) -> None:
    from servers.store.base import StoreError

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the PostgreSQL store failed: connection refused")

    api.client.app.state.contam.store.get_job = down  # type: ignore[attr-defined]
    resp = api.client.get(f"/v1/scans/{'a' * 32}", headers=api.h())
    assert_problem(resp, 503)
    assert resp.headers["retry-after"] == "2" and "connection refused" not in resp.text


def test_a_page_of_scans_is_full_when_checklists_interleave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for api in make_api(tmp_path, monkeypatch, max_active_jobs=20):
        for i in range(3):
            submit(api, scan_body(seed=i))
            api.store.create_job("alice", "checklist", {"n": i})
        page = api.client.get("/v1/scans", params={"limit": 3}, headers=api.h()).json()
        assert [s["kind"] for s in page["items"]] == ["scan"] * 3 and page["next_cursor"] is None


def test_every_response_says_the_servers_own_time(api: Api) -> None:
    # An error answer too: the split of a client's latency must cover every kind of response.
    for resp in (api.client.get("/healthz"), api.client.get("/v1/scans"), api.client.get("/v1/scans", headers=api.h())):
        ms = app_ms(resp.headers.get("server-timing"))
        assert ms is not None and 0 <= ms < 60_000, resp.headers


@pytest.mark.parametrize(
    ("header", "ms"),
    [("app;dur=1.25", 1.25), ("db;dur=3, app;desc=\"x\";dur=7", 7.0), ("db;dur=3", None), (None, None),
     ("app;dur=fast", None), ("app", None)],
)
def test_server_timing_header_is_parsed(header: str | None, ms: float | None) -> None:
    assert app_ms(header) == ms

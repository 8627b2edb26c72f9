"""The API's other resources through TestClient: overlap against a real (tiny) persistent corpus
index registered in the settings, and checklist jobs checked against the server's registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from servers.app import create_app
from servers.settings import ServerSettings
from servers.store import open_store
from tests.unit.test_service_api import assert_problem

PLANTED = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    from corpora_index import build_index, expand_sources

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("some words before " + PLANTED + " and after", encoding="utf-8")
    (corpus / "b.txt").write_text(" ".join(f"filler{k}" for k in range(200)), encoding="utf-8")
    build_index(expand_sources([corpus]), tmp_path / "idx", shard_bytes=1000)
    settings = ServerSettings(
        store=f"sqlite:///{tmp_path / 'jobs.sqlite'}",
        models=({"name": "mock", "spec": "mock"},),
        indexes=({"name": "tiny", "path": tmp_path / "idx", "description": "two files"},),
    )
    store = open_store(settings.store)
    _, secret = store.create_key("alice")
    with TestClient(create_app(settings, store=store, workers=0), raise_server_exceptions=False) as c:
        yield c, {"Authorization": f"Bearer {secret}"}, store
    store.close()


def test_overlap_finds_the_planted_item(
    client: tuple[TestClient, dict[str, str], Any], tmp_path: Path
) -> None:
    c, h, _ = client
    items = [
        {"id": "planted", "partition": "test", "text": PLANTED},
        {"id": "fresh", "partition": "test", "text": " ".join(f"novel{k}" for k in range(30))},
    ]
    resp = c.post(
        "/v1/overlap", headers=h, json={"index": "tiny", "benchmark": {"name": "b", "items": items}}
    )
    assert resp.status_code == 200, resp.text
    by_id = {i["id"]: i for i in resp.json()["items"]}
    assert by_id["planted"]["matched"] and by_id["planted"]["longest_span"] == 26
    assert not by_id["fresh"]["matched"]
    assert str(tmp_path) not in c.get("/v1/indexes", headers=h).text  # the path stays server-side
    assert c.get("/v1/indexes", headers=h).json() == {"items": [{"name": "tiny", "description": "two files"}]}


def test_overlap_refuses_unregistered_indexes_and_paths(
    client: tuple[TestClient, dict[str, str], Any],
) -> None:
    c, h, _ = client
    bench = {"items": [{"text": PLANTED}]}
    assert_problem(
        c.post("/v1/overlap", headers=h, json={"index": "other", "benchmark": bench}), 422, field="index"
    )
    assert_problem(
        c.post("/v1/overlap", headers=h, json={"index": "/tmp/idx", "benchmark": bench}), 422, field="index"
    )
    assert_problem(
        c.post("/v1/overlap", headers=h, json={"index": "tiny", "benchmark": bench, "partitions": ["x"]}),
        422,
        field="partitions[0]",
    )
    assert_problem(c.post("/v1/overlap", headers=h, content=b"x", params={}), 415)


def test_checklist_jobs_name_only_registered_things(client: tuple[TestClient, dict[str, str], Any]) -> None:
    c, h, store = client
    ok = {
        "model": "mock",
        "benchmarks": [{"name": "humaneval"}],
        "indexes": ["tiny"],
        "probes": [{"name": "loss"}],
    }
    resp = c.post("/v1/checklists", headers=h, json=ok)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    assert resp.headers["location"] == f"/v1/checklists/{job_id}"
    assert c.get(f"/v1/checklists/{job_id}", headers=h).json()["kind"] == "checklist"
    assert_problem(c.get(f"/v1/scans/{job_id}", headers=h), 404)  # a checklist is not a scan
    assert_problem(c.get(f"/v1/checklists/{job_id}/result", headers=h), 409)
    for bad, field in [
        ({**ok, "model": "nope"}, "model"),
        ({**ok, "model": "hf:/models/x"}, "model"),
        ({**ok, "indexes": ["/srv/index"]}, "indexes[0]"),
        ({**ok, "benchmarks": [{"name": "../../data.jsonl"}]}, "benchmarks[0].name"),
        ({**ok, "benchmarks": [{"name": "humaneval", "reference": "unseen"}]}, "benchmarks[0].reference"),
        ({**ok, "probes": [{"name": "min_k", "params": {"k": 3}}]}, "probes[0].params.k"),
    ]:
        assert_problem(c.post("/v1/checklists", headers=h, json=bad), 422, field=field)
    before = len(store.list_jobs("alice", 100)[0])
    assert_problem(
        c.post("/v1/checklists", headers=h, json={**ok, "indexes": ["missing"]}), 422, field="indexes[0]"
    )
    assert len(store.list_jobs("alice", 100)[0]) == before

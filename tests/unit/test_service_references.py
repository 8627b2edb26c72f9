"""Issue 20, findings 1-4, tested as an attacker would: probe parameters that name a URL, a path or
unbounded work, sent through every door (scans as JSON, JSONL and multipart, checklists), and a
stored job that carries one to a worker. A loopback listener stands in for the outside world; the
server's API key is a sentinel that must appear nowhere."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contam.errors import ContamError
from contam.probe import ProbeParams, capped
from contam.registry import get_probe, probe_names
from contam.resolve import FileRef, ModelRef, references
from servers.app import create_app
from servers.jobs import JobProgress, run_checklist, run_scan
from servers.settings import ServerSettings
from servers.store import open_store

SERVER_KEY = "sk-server-key-never-leaves-7731"
ITEMS = [
    {"id": f"t{i}", "partition": "test" if i < 4 else "unseen", "text": f"item number {i} of a small set"}
    for i in range(8)
]


class Listener:
    """A loopback TCP listener standing in for the outside world: it records every connection
    and every byte sent to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.heard: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(0.5)
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            self.heard.append(data)
            conn.close()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    ear = Listener()
    yield ear
    ear.close()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServerSettings:
    monkeypatch.setenv("OPENAI_API_KEY", SERVER_KEY)
    templates = tmp_path / "house.json"
    templates.write_text(json.dumps({"guided": {"completion": "{dataset} {split}: {first_piece}"}}))
    return ServerSettings(
        store=f"sqlite:///{tmp_path / 'jobs.sqlite'}",
        cache_path=tmp_path / "calls.sqlite",
        models=({"name": "mock", "spec": "mock"}, {"name": "clean", "spec": "mock:name=clean"}),
        templates=({"name": "house", "path": templates},),
        limits={"rate_per_s": 1000.0, "burst": 1000},
    )


@pytest.fixture
def api(settings: ServerSettings) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    store = open_store(settings.store)
    _, secret = store.create_key("mallory")
    with TestClient(create_app(settings, store=store, workers=0), raise_server_exceptions=False) as c:
        yield c, {"Authorization": f"Bearer {secret}"}, store
    store.close()


def scan(probes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "benchmark": {"name": "mine", "items": ITEMS},
        "model": "mock",
        "reference": "unseen",
        "probes": probes,
    }


def hostile_references(url: str, tmp_path: Path) -> list[tuple[str, Any]]:
    """(probe, params) pairs that name something outside the registry."""
    dropped = tmp_path / "dropped.log"
    return [
        ("reference", {"model": f"openai:x@{url}"}),
        ("guided", {"judge": f"openai:x@{url}"}),
        ("guided", {"judge": f"mock:calls={dropped}"}),
        ("reference", {"model": f"mock:seen={tmp_path / 'house.json'}"}),
        ("reference", {"model": "hf:/etc"}),
        ("guided", {"templates": "/etc/passwd"}),
        ("guided", {"templates": str(tmp_path / "house.json")}),
        ("guided", {"templates": "../house"}),
        ("guided", {"templates": "nope"}),
        ("reference", {"model": "nope"}),
    ]


def assert_refused(resp: Any, field: str) -> dict[str, Any]:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["field"] == field, body
    assert SERVER_KEY not in resp.text
    return dict(body)


def test_every_door_refuses_unregistered_references(
    api: tuple[TestClient, dict[str, str], Any], listener: Listener, tmp_path: Path
) -> None:
    c, h, store = api
    for probe, params in hostile_references(listener.url(), tmp_path):
        field = f"probes[0].params.{next(iter(params))}"
        assert_refused(c.post("/v1/scans", headers=h, json=scan([{"name": probe, "params": params}])), field)
        checklist = {
            "model": "mock",
            "benchmarks": [{"name": "humaneval"}],
            "probes": [{"name": probe, "params": params}],
        }
        assert_refused(c.post("/v1/checklists", headers=h, json=checklist), field)
        options = {"model": "mock", "reference": "unseen", "probes": [{"name": probe, "params": params}]}
        lines = "\n".join(json.dumps(item) for item in ITEMS)
        multipart = c.post(
            "/v1/scans",
            headers=h,
            files={"file": ("mine.jsonl", lines, "application/x-ndjson")},
            data={"request": json.dumps(options)},
        )
        assert_refused(multipart, field)
        ((key, value),) = params.items()
        jsonl = c.post(
            "/v1/scans",
            headers={**h, "Content-Type": "application/x-ndjson"},
            params={
                "model": "mock",
                "reference": "unseen",
                "probe": probe,
                "param": f"{probe}.{key}={value}",
            },
            content=lines,
        )
        assert_refused(jsonl, field)
    assert store.list_jobs("mallory", 100)[0] == [], "nothing was queued"
    assert listener.heard == [], "the service called out"
    assert not (tmp_path / "dropped.log").exists(), "a file was written where a client said"


def test_the_answer_does_not_depend_on_the_servers_disk(
    api: tuple[TestClient, dict[str, str], Any], tmp_path: Path
) -> None:
    c, h, _ = api
    real_json = tmp_path / "house.json"  # a JSON file the server can read
    answers = []
    for path in (str(real_json), str(tmp_path / "missing.json"), "/etc/passwd", "/etc", "house2"):
        resp = c.post("/v1/scans", headers=h, json=scan([{"name": "guided", "params": {"templates": path}}]))
        answers.append((resp.status_code, resp.json()))
    assert all(a == answers[0] for a in answers), answers
    assert (
        "guided" not in json.dumps(answers[0][1]["detail"]).lower() or "registered" in answers[0][1]["detail"]
    )


def test_registered_references_are_accepted(api: tuple[TestClient, dict[str, str], Any]) -> None:
    c, h, _ = api
    body = scan(
        [
            {"name": "reference", "params": {"model": "clean"}},
            {"name": "guided", "params": {"judge": "clean", "templates": "house"}},
        ]
    )
    resp = c.post("/v1/scans", headers=h, json=body)
    assert resp.status_code == 202, resp.text


@pytest.mark.parametrize(
    ("probe", "params", "field"),
    [
        ("exchangeability", {"permutations": 1_000_000}, "probes[0].params.permutations"),
        ("exchangeability", {"shards": 100_000}, "probes[0].params.shards"),
        ("exchangeability", {"stride": 1}, "probes[0].params.stride"),
        ("exchangeability", {"context_len": 10_000_000}, "probes[0].params.context_len"),
        ("cdd", {"samples": 100_000}, "probes[0].params.samples"),
        ("cdd", {"max_tokens": 1_000_000}, "probes[0].params.max_tokens"),
        ("guided", {"max_tokens_cap": 1_000_000}, "probes[0].params.max_tokens_cap"),
        ("ts_guessing_qb", {"max_tokens": 1_000_000}, "probes[0].params.max_tokens"),
    ],
)
def test_work_over_a_cap_is_refused_before_it_is_queued(
    api: tuple[TestClient, dict[str, str], Any], probe: str, params: dict[str, Any], field: str
) -> None:
    c, h, store = api
    body = assert_refused(
        c.post("/v1/scans", headers=h, json=scan([{"name": probe, "params": params}])), field
    )
    assert "caps." in body["detail"]
    assert store.list_jobs("mallory", 100)[0] == []


def test_items_times_probes_is_capped(settings: ServerSettings) -> None:
    store = open_store(settings.store)
    _, secret = store.create_key("mallory")
    tight = settings.model_copy(update={"caps": settings.caps.model_copy(update={"item_probes": 15})})
    with TestClient(create_app(tight, store=store, workers=0), raise_server_exceptions=False) as c:
        h = {"Authorization": f"Bearer {secret}"}
        two = scan([{"name": "loss"}, {"name": "zlib"}])  # 8 items x 2 probes = 16 pairs
        assert (
            "caps.item_probes"
            in assert_refused(c.post("/v1/scans", headers=h, json=two), "benchmark")["detail"]
        )
        one = scan([{"name": "loss"}])
        assert c.post("/v1/scans", headers=h, json=one).status_code == 202
    store.close()


def test_the_openapi_schema_states_the_caps_and_the_references(
    api: tuple[TestClient, dict[str, str], Any],
) -> None:
    c, _, _ = api
    schema = c.get("/openapi.json").json()
    params = schema["components"]["schemas"]["ExchangeabilityProbeSpec"]["properties"]["params"]
    perms = params["properties"]["permutations"]
    assert perms["maximum"] == 1000 and perms["x-contam-cap"] == "permutations"
    assert params["properties"]["stride"]["minimum"] == 256
    judge = schema["components"]["schemas"]["GuidedProbeSpec"]["properties"]["params"]["properties"]["judge"]
    assert "x-contam-reference" in json.dumps(judge) and "clean" in json.dumps(judge)


# -- a stored job that carries a hostile reference reaches the worker ---------------------------------


def test_a_worker_resolves_stored_references_through_the_registry_only(
    settings: ServerSettings, listener: Listener, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A request stored before the API refused such things (or written to the store by hand).
    for probe, params in hostile_references(listener.url(), tmp_path):
        request = scan([{"name": probe, "params": params}])
        with pytest.raises(ContamError) as err:
            asyncio.run(run_scan(request, settings, JobProgress()))
        assert "registered" in str(err.value) and SERVER_KEY not in str(err.value)
        checklist = {
            "model": "mock",
            "benchmarks": [{"name": "humaneval"}],
            "probes": [{"name": probe, "params": params}],
        }
        with pytest.raises(ContamError):
            asyncio.run(run_checklist(checklist, settings, JobProgress(), out_dir=tmp_path / "out"))
    assert listener.heard == []
    assert not (tmp_path / "dropped.log").exists()
    assert SERVER_KEY not in caplog.text


def test_a_worker_runs_registered_references(settings: ServerSettings) -> None:
    request = scan(
        [
            {"name": "reference", "params": {"model": "clean"}},
            {"name": "guided", "params": {"judge": "clean", "templates": "house"}},
        ]
    )
    report = json.loads(asyncio.run(run_scan(request, settings, JobProgress())))
    by_probe = {r["probe"]: r for r in report["probes"]}
    assert by_probe["reference"]["skipped"] is None
    assert by_probe["guided"]["params"]["templates_sha256"]
    assert by_probe["guided"]["params"]["judge_model"].startswith("mock")


# -- the contract every probe keeps ---------------------------------------------------------------------

# Integer parameters that do not scale a probe's work (so they need no cap).
UNSCALED = {("exchangeability", "min_shard_size")}


@pytest.mark.parametrize("name", probe_names())
def test_every_parameter_that_scales_work_declares_a_cap(name: str) -> None:
    params_type = get_probe(name).Params
    capped_fields = {path for path, _, _ in capped(_with_every_int_set(params_type))}
    for field, info in params_type.model_fields.items():
        if info.annotation in (int, int | None) and (name, field) not in UNSCALED:
            assert field in capped_fields, f"{name}.{field} scales work? declare a cap or list it in UNSCALED"
        # A string parameter is free text, or a reference the resolvers see; never a raw spec or path.
        if "spec" in (info.description or "") or "path" in (info.description or "").lower():
            assert info.annotation in (ModelRef, ModelRef | None) or _is_file_ref(info.annotation), (
                f"{name}.{field}"
            )


def _with_every_int_set(params_type: type[ProbeParams]) -> ProbeParams:
    return params_type.model_validate(
        {f: 10_000 for f, i in params_type.model_fields.items() if i.annotation in (int | None,)}
    )


def _is_file_ref(annotation: Any) -> bool:
    args = getattr(annotation, "__args__", (annotation,))
    return any(isinstance(a, type) and issubclass(a, FileRef) for a in args)


def test_probes_open_no_model_themselves() -> None:
    # Probes receive second models through ctx.resolver; building a client from a parameter
    # would bypass the registry.
    root = Path(__file__).resolve().parents[2] / "probes"
    for path in root.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "create_model" not in text and "ModelSpec" not in text, path.name


def test_references_are_found_at_any_depth() -> None:
    from pydantic import BaseModel

    class Inner(BaseModel):
        judges: list[ModelRef]

    class Outer(BaseModel):
        inner: Inner
        by_name: dict[str, ModelRef]
        note: str

    found = list(
        references(
            Outer.model_validate({"inner": {"judges": ["a", "b"]}, "by_name": {"x": "c"}, "note": "d"})
        )
    )
    assert found == [("inner.judges[0]", "a"), ("inner.judges[1]", "b"), ("by_name.x", "c")]
    assert all(isinstance(ref, ModelRef) for _, ref in found)

"""Uploads and errors hardened (issue 20, findings 6 and 7), in-process through the TestClient:

- uploads are parsed off the event loop, and a JSONL body over the item limit is refused at the
  first line past it;
- a JSONL row is validated as a JSON item is: NaN, Infinity and unknown columns are refused with
  the line and field; conflicting multipart parts, and query parameters given twice, are refused;
- no error answer carries Python internals (an over-long integer, deep nesting, odd Unicode);
- failed authentication is rate-limited per client address.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from servers.problems import ApiProblem
from servers.scans.schemas import UploadLimits
from servers.uploads import ItemRows, JsonlReader
from tests.unit.test_service_api import ITEMS, Api, assert_problem, make_api, scan_body, submit

NDJSON = {"Content-Type": "application/x-ndjson"}
LEAKS = (
    "Traceback",
    'File "',
    "pydantic",
    "sys.set_int_max_str_digits",
    "int_max_str_digits",
    "Exceeds the limit",
    "site-packages",
    "servers.",
    "contam.",
    "object at 0x",
)


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    yield from make_api(tmp_path, monkeypatch)


def lines(*rows: Any) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def post_jsonl(api: Api, body: bytes, query: str = "model=mock&reference=unseen") -> Any:
    return api.client.post(f"/v1/scans?{query}", content=body, headers=api.h(**NDJSON))


def refused(api: Api, resp: Any, status: int, **kw: Any) -> dict[str, Any]:
    body = assert_problem(resp, status, **kw)
    assert api.jobs() == [], "a refused request must store nothing"
    return body


# --- finding 7: JSONL rows checked as JSON items are ---------------------------------------------


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_jsonl_nan_and_infinity_are_refused_with_line_and_field(api: Api, constant: bytes) -> None:
    body = lines(ITEMS[0], b'{"id": "s2", "partition": "test", "text": ' + constant + b"}", *ITEMS[2:])
    problem = refused(api, post_jsonl(api, body), 422, field="body.text")
    assert "body.jsonl:2" in problem["detail"] and "not a JSON number" in problem["detail"]


def test_jsonl_number_out_of_range_is_refused(api: Api) -> None:
    body = lines(ITEMS[0], b'{"id": "s2", "partition": "test", "text": 1e999}', *ITEMS[2:])
    refused(api, post_jsonl(api, body), 422, field="body.text", says="body.jsonl:2")


def test_jsonl_unknown_column_is_refused_with_line_and_field(api: Api) -> None:
    body = lines(*ITEMS[:2], {**ITEMS[2], "path": "/etc/passwd"}, ITEMS[3])
    problem = refused(api, post_jsonl(api, body), 422, field="body.path")
    assert "body.jsonl:3" in problem["detail"] and "unknown column" in problem["detail"]


def test_jsonl_row_checked_by_the_item_schema(api: Api) -> None:
    body = lines(ITEMS[0], {"id": "x", "partition": "../etc", "text": "t"})
    refused(api, post_jsonl(api, body), 422, field="body.partition", says="body.jsonl:2")
    body = lines(ITEMS[0], {"id": "x", "partition": "test", "text": ["a", "list"]})
    refused(api, post_jsonl(api, body), 422, field="body.text", says="body.jsonl:2")


def test_jsonl_field_over_the_limit_names_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for api in make_api(tmp_path, monkeypatch, max_field_chars=100):
        body = lines(*ITEMS[:3], {**ITEMS[3], "text": "z" * 101})
        problem = refused(api, post_jsonl(api, body), 422, field="body.text", says="body.jsonl:4")
        assert "limit of 100" in problem["detail"]


def test_jsonl_over_the_item_limit_names_the_first_line_past_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for api in make_api(tmp_path, monkeypatch, max_items=3):
        problem = refused(api, post_jsonl(api, lines(*ITEMS)), 422, field="body")
        assert "body.jsonl:4" in problem["detail"] and "limit of 3" in problem["detail"]


def test_the_jsonl_reader_stops_at_the_first_line_past_the_limit() -> None:
    rows = ItemRows(UploadLimits(max_items=3), "body.jsonl", "body")
    reader = JsonlReader(rows)
    line = json.dumps({"text": "one item"}).encode() + b"\n"
    reader.feed(line * 3)
    assert len(rows.rows) == 3
    with pytest.raises(ApiProblem) as caught:
        reader.feed(line * 100_000)  # refused at its first line, before parsing the others
    assert "body.jsonl:4" in caught.value.detail
    assert len(rows.rows) == 3


def test_a_good_jsonl_body_still_loads(api: Api) -> None:
    body = b"\xef\xbb\xbf" + lines(
        *ITEMS, {"id": "s3", "partition": "test", "text": "one more", "label": "x"}
    )
    resp = post_jsonl(api, body)
    assert resp.status_code == 202, resp.text
    items = api.jobs()[0].request["benchmark"]["items"]
    assert [i["id"] for i in items] == ["s1", "s2", "s3", "u1", "u2"]


def test_a_query_parameter_given_twice_is_refused(api: Api) -> None:
    refused(api, post_jsonl(api, lines(*ITEMS), "model=mock&model=remote"), 422, field="query.model")
    query = "model=mock&probe=min_k&param=min_k.k=0.2&param=min_k.k=0.5"
    refused(api, post_jsonl(api, lines(*ITEMS), query), 422, field="query.param", says="given twice")


def multipart(api: Api, request: dict[str, Any], data: bytes, name: str = "b.jsonl") -> Any:
    return api.client.post(
        "/v1/scans",
        headers=api.h(),
        files={"file": (name, data, "application/octet-stream")},
        data={"request": json.dumps(request)},
    )


def test_multipart_request_carrying_items_beside_a_file_is_refused_naming_both(api: Api) -> None:
    options = {"model": "mock", "reference": "unseen", "benchmark": {"name": "x", "items": ITEMS}}
    problem = refused(api, multipart(api, options, lines(*ITEMS)), 422)
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"request.benchmark.items", "file"}, problem
    assert "request.benchmark.items" in problem["detail"] and "file" in problem["detail"]


def test_multipart_part_given_twice_is_refused(api: Api) -> None:
    boundary = "b0undary"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="request"\r\n\r\n'
        + json.dumps({"model": "mock"})
        + "\r\n"
    )
    file = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b.jsonl"\r\n\r\n'
        + lines(*ITEMS).decode()
        + "\r\n"
    )
    body = (part + part + file + f"--{boundary}--\r\n").encode()
    resp = api.client.post(
        "/v1/scans",
        content=body,
        headers=api.h(**{"Content-Type": f"multipart/form-data; boundary={boundary}"}),
    )
    refused(api, resp, 422, field="request", says="given twice")


def test_multipart_file_rows_are_checked_as_items_in_every_file_type(api: Api) -> None:
    options = {"model": "mock", "reference": "unseen"}
    bad_json = json.dumps([*ITEMS[:1], {**ITEMS[1], "extra": 1}]).encode()
    refused(api, multipart(api, options, bad_json, "b.json"), 422, field="file.extra", says="b.json row 2")
    nan_json = b"[" + json.dumps(ITEMS[0]).encode() + b', {"text": NaN}]'
    refused(api, multipart(api, options, nan_json, "b.json"), 422, field="file.text", says="b.json row 2")
    csv = b"id,partition,text,source\r\ns1,test,hello there,web\r\n"
    refused(api, multipart(api, options, csv, "b.csv"), 422, field="file.source", says="unknown column")
    good_csv = b"id,partition,text,label\r\ns1,test,hello there,\r\nu1,unseen,general kenobi,x\r\n"
    resp = multipart(api, options, good_csv, "b.csv")
    assert resp.status_code == 202, resp.text
    assert api.jobs()[0].request["benchmark"]["items"][0] == {
        "id": "s1",
        "partition": "test",
        "text": "hello there",
    }


# --- finding 7: JSON bodies, and errors that leak nothing ------------------------------------------


def test_json_body_nan_and_out_of_range_numbers_are_refused_naming_the_field(api: Api) -> None:
    raw = json.dumps(scan_body()).replace('"A stitch in time saves nine, they say."', "NaN").encode()
    resp = api.client.post("/v1/scans", content=raw, headers=api.h(**{"Content-Type": "application/json"}))
    refused(api, resp, 422, field="benchmark.items[1].text", says="not a JSON number")
    raw = (
        json.dumps(scan_body(probes=[{"name": "min_k", "params": {"k": 0.5}}]))
        .replace("0.5", "1e999")
        .encode()
    )
    resp = api.client.post("/v1/scans", content=raw, headers=api.h(**{"Content-Type": "application/json"}))
    refused(api, resp, 422, field="probes[0].params.k", says="out of range")


def test_json_key_given_twice_is_refused(api: Api) -> None:
    raw = b'{"model": "mock", "model": "remote", "benchmark": {"name": "humaneval"}}'
    resp = api.client.post("/v1/scans", content=raw, headers=api.h(**{"Content-Type": "application/json"}))
    refused(api, resp, 422, says="given twice")


def test_a_5001_digit_seed_is_a_clean_422_naming_the_field(api: Api) -> None:
    digits = "7" * 5001
    raw = json.dumps(scan_body()).replace('"reference": "unseen"', f'"reference": "unseen", "seed": {digits}')
    resp = api.client.post(
        "/v1/scans", content=raw.encode(), headers=api.h(**{"Content-Type": "application/json"})
    )
    problem = refused(api, resp, 422, field="seed")
    assert not any(leak in resp.text for leak in LEAKS), problem
    resp = post_jsonl(api, lines(*ITEMS), f"model=mock&reference=unseen&seed={digits}")
    refused(api, resp, 422, field="seed")
    assert not any(leak in resp.text for leak in LEAKS), resp.text


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


HOSTILE_JSON = [
    pytest.param('{"model": "mock", "seed": ' + "9" * 5001 + "}", id="huge-int"),
    pytest.param('{"model": "mock", "seed": -' + "9" * 100_000 + "}", id="huger-negative-int"),
    pytest.param('{"model": "mock", "alpha": ' + "9" * 5001 + ".5}", id="huge-float"),
    pytest.param('{"model": "mock", "alpha": 1e99999}', id="float-overflow"),
    pytest.param('{"model": "mock", "alpha": NaN}', id="nan"),
    pytest.param(
        '{"model": "mock", "probes": [{"name": "loss", "params": {"k": -Infinity}}]}', id="inf-param"
    ),
    pytest.param(
        '{"model": "mock", "probes": [{"name": "loss", "params": {"k": ' + _nested(900) + "}}]}", id="deep"
    ),
    pytest.param(_nested(200_000), id="deeper-than-the-stack"),
    pytest.param('{"model": "mock", "benchmark": {"items": [{"text": "\\ud800"}]}}', id="lone-surrogate"),
    pytest.param('{"\\udfff": 1}', id="lone-surrogate-key"),
    pytest.param('{"model": "mock\\u0000", "benchmark": {"name": "x\\u202e"}}', id="nul-and-bidi"),
    pytest.param('{"' + "k" * 100_000 + '": 1}', id="huge-key"),
    pytest.param(
        '{"model": "mock", "benchmark": {"name": "humaneval"}, "probes": [{"name": "\\u0130"}]}', id="unicode"
    ),
]


@pytest.mark.parametrize("raw", HOSTILE_JSON)
def test_hostile_json_bodies_answer_problem_json_without_internals(api: Api, raw: str) -> None:
    for path in ("/v1/scans", "/v1/checklists"):
        resp = api.client.post(
            path, content=raw.encode(), headers=api.h(**{"Content-Type": "application/json"})
        )
        assert 400 <= resp.status_code < 500, resp.text[:500]
        assert resp.headers["content-type"].startswith("application/problem+json")
        resp.json()  # valid JSON, whatever the input held
        assert not any(leak in resp.text for leak in LEAKS), resp.text[:500]
        assert len(resp.content) < 4096, "an error does not echo the input"
    assert api.jobs() == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": ' + b"1" * 5001 + b"}",
        b'{"text": "x", "answer_index": ' + b"1" * 5001 + b"}",
        b"[" * 200_000,
        b'{"text": "\\ud800"}',
        b'{"text": "ok"}\xff\xfe',
        b'{"te\\u0000xt": "x"}',
    ],
)
def test_hostile_jsonl_lines_answer_problem_json_without_internals(api: Api, raw: bytes) -> None:
    resp = post_jsonl(api, lines(ITEMS[0], raw), "model=mock")
    assert 400 <= resp.status_code < 500, resp.text[:500]
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "body.jsonl:2" in resp.json()["detail"] or resp.json()["detail"].startswith("body.jsonl:2")
    assert not any(leak in resp.text for leak in LEAKS), resp.text[:500]


def test_an_unexpected_error_says_nothing_of_its_internals(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError('File "/srv/servers/secret.py", line 1: sys.set_int_max_str_digits')

    monkeypatch.setattr(api.client.app.state.contam.scans, "parse", crash)  # type: ignore[attr-defined]
    resp = submit(api)
    assert_problem(resp, 500)
    assert not any(leak in resp.text for leak in LEAKS) and "secret" not in resp.text


# --- finding 6: parsing off the event loop --------------------------------------------------------


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_every_upload_form_is_parsed_off_the_event_loop(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from servers.uploads import ItemRows as Rows

    seen: list[tuple[str, bool]] = []
    add, scans = Rows.add, api.client.app.state.contam.scans  # type: ignore[attr-defined]
    parse = scans.parse

    def spy_add(self: Rows, row: Any, loc: Any) -> None:
        seen.append(("row", _on_event_loop()))
        add(self, row, loc)

    def spy_parse(data: Any) -> Any:
        seen.append(("request", _on_event_loop()))
        return parse(data)

    monkeypatch.setattr(Rows, "add", spy_add)
    monkeypatch.setattr(scans, "parse", spy_parse)
    assert submit(api).status_code == 202
    assert post_jsonl(api, lines(*ITEMS)).status_code == 202
    assert multipart(api, {"model": "mock", "reference": "unseen"}, lines(*ITEMS)).status_code == 202
    assert {kind for kind, _ in seen} == {"row", "request"} and len(seen) == 3 + 2 * 4
    assert not any(on_loop for _, on_loop in seen), seen


# --- finding 7: failed authentication is rate-limited per client address ----------------------------


def _peer_from_header(app: Any) -> Any:
    """The ASGI app with the client address taken from a test-only header, as a socket peer would be."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-test-peer":
                    scope = {**scope, "client": (value.decode(), 40000)}
        await app(scope, receive, send)

    return asgi


def test_wrong_keys_are_rate_limited_per_client_address(api: Api) -> None:
    app = api.client.app
    with TestClient(_peer_from_header(app), raise_server_exceptions=False) as client:
        # the lifespan has run for `api.client` already; this client shares its app and state
        attacker = {"Authorization": "Bearer ck_0000000000000000_wrong", "X-Test-Peer": "10.0.0.66"}
        codes = [client.get("/v1/scans", headers=attacker).status_code for _ in range(300)]
        assert codes.count(401) <= 25 and codes.count(429) >= 270, (codes.count(401), codes.count(429))
        limited = client.get("/v1/scans", headers=attacker)
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        # a missing key counts as a failure too
        assert client.get("/v1/scans", headers={"X-Test-Peer": "10.0.0.66"}).status_code == 429
        # another address with a valid key is unaffected; its own failures have their own budget
        other = {**api.h(), "X-Test-Peer": "10.0.0.7"}
        assert client.get("/v1/scans", headers=other).status_code == 200
        assert client.get("/v1/scans", headers={"X-Test-Peer": "10.0.0.7"}).status_code == 401
        # the blocked address is refused even with a valid key: its key is not checked at all
        assert client.get("/v1/scans", headers={**api.h(), "X-Test-Peer": "10.0.0.66"}).status_code == 429
        # health needs no key, so no limit applies to it
        assert client.get("/healthz", headers={"X-Test-Peer": "10.0.0.66"}).status_code == 200


def test_forwarded_for_is_not_trusted_by_the_failure_limit(api: Api) -> None:
    wrong = {"Authorization": "Bearer ck_0000000000000000_wrong"}
    codes = [
        api.client.get("/v1/scans", headers={**wrong, "X-Forwarded-For": f"10.1.{i}.1"}).status_code
        for i in range(60)
    ]
    assert codes.count(429) >= 30


def test_the_failure_limiter_forgets_refilled_addresses() -> None:
    from servers.limits import RateLimiter

    now = [0.0]
    limiter = RateLimiter(1.0, 2, clock=lambda: now[0], max_buckets=10)
    for i in range(10):
        limiter.take(f"a{i}")
    now[0] = 5.0  # all refilled
    limiter.take("new")
    assert len(limiter._buckets) == 1
    assert limiter.wait("unknown") is None
    limiter.take("x"), limiter.take("x")
    assert limiter.wait("x") == pytest.approx(1.0)

"""`servers.jsontext.dumps` writes what `json.dumps(value, ensure_ascii=False)` writes, piece by
piece (issue 20: one 8 MB `json.dumps` held the GIL for tens of milliseconds); the store keeps the
text it is given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from servers.jsontext import dumps
from servers.store import open_store

STORED_REQUEST: dict[str, Any] = {
    "model": "mock",
    "probes": [{"name": "loss", "params": {}}, {"name": "min_k", "params": {"k": 0.2}}],
    "reference": "unseen",
    "alpha": 0.05,
    "seed": 0,
    "benchmark": {
        "name": "big",
        "items": [
            {"id": f"i{i}", "partition": "test" if i % 2 else "unseen", "text": f'é \u2028 "{i}" \\ \t'}
            for i in range(50)
        ]
        + [{"id": "mc", "choices": ["a", "b"], "answer_index": 1}],
    },
}


@pytest.mark.parametrize(
    "value",
    [
        STORED_REQUEST,
        {},
        [],
        {"a": {}, "b": [], "c": [[1, [2.5]], {"k": [{}]}], "d": None, "e": True, "f": 1e300},
        {"a": {1: "int keys are written as json.dumps writes them"}},
        "text",
        3,
    ],
)
def test_dumps_is_json_dumps(value: Any) -> None:
    assert dumps(value) == json.dumps(value, ensure_ascii=False)


def test_store_keeps_the_text_it_is_given(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    job, created = store.create_job("alice", "scan", STORED_REQUEST, request_json=dumps(STORED_REQUEST))
    assert created and job.request == STORED_REQUEST
    text = dumps(STORED_REQUEST)
    again, created = store.create_job("alice", "scan", STORED_REQUEST, "k", request_json=text)
    same, created_again = store.create_job("alice", "scan", STORED_REQUEST, "k")
    assert created and not created_again and same.id == again.id and same.request == STORED_REQUEST
    store.close()

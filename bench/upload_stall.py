"""Does one tenant's upload stall the others? `/healthz` latency, as other clients see it, while a
large upload is sent and parsed, against a real `contam serve` (uvicorn) on loopback.

Each case starts a fresh service (no workers, so only the API's own work is measured), sends one
upload while `--pollers` clients each call `/healthz` back to back over a kept-alive connection,
and prints the upload's answer and time, and the p50 / p99 / max of the `/healthz` calls made
while the upload was in flight. The cases:

- `jsonl-100k`: a 100,000-line JSONL body (over the item limit: refused with 422).
- `jsonl-max`: a JSONL body at the limits: `max_items` lines filling `max_body_bytes`.
- `json-max`: the same items as an application/json `ScanRequest`.
- `multipart-max`: the same lines as a multipart `file` part.

    python bench/upload_stall.py [--cases jsonl-100k,jsonl-max,json-max,multipart-max] [--pollers 4]

`measure(url, key, body, content_type)` is importable (the uvicorn test uses it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.service import ServiceProcess, create_key, write_config  # noqa: E402

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_ITEMS = 5000
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Stall:
    status: int
    upload_s: float
    healthz_ms: list[float]
    # /healthz calls that were still waiting for an answer when the upload's answer came back
    answered_after_upload: int

    def quantile(self, q: float) -> float:
        if not self.healthz_ms:
            return float("nan")
        ordered = sorted(self.healthz_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def line(self, case: str) -> str:
        ms = self.healthz_ms
        return (
            f"{case:14s} upload {self.status} in {self.upload_s * 1000:7.0f} ms | /healthz n={len(ms):4d} "
            f"p50 {statistics.median(ms) if ms else float('nan'):6.1f} p99 {self.quantile(0.99):7.1f} "
            f"max {max(ms) if ms else float('nan'):7.1f} ms"
        )


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)


def measure(
    url: str,
    key: str,
    body: bytes,
    content_type: str,
    *,
    path: str = "/v1/scans",
    pollers: int = 4,
    settle_s: float = 0.3,
) -> Stall:
    """Send `body` once while `pollers` clients call /healthz back to back; the /healthz latencies
    of the calls that started while the upload was in flight."""
    in_flight = threading.Event()
    done = threading.Event()
    samples: list[float] = []
    late = [0]
    lock = threading.Lock()

    def poll() -> None:
        conn = _connection(url)
        try:
            while not done.is_set():
                started = time.perf_counter()
                during = in_flight.is_set()
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                resp.read()
                took = (time.perf_counter() - started) * 1000
                if during:
                    with lock:
                        samples.append(took)
                        if done.is_set():
                            late[0] += 1
                time.sleep(0.002)
        finally:
            conn.close()

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(pollers)]
    for t in threads:
        t.start()
    time.sleep(settle_s)  # the pollers connected and warm
    conn = _connection(url)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
    in_flight.set()
    started = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    upload_s = time.perf_counter() - started
    in_flight.clear()
    done.set()
    for t in threads:
        t.join(timeout=60)
    conn.close()
    return Stall(resp.status, upload_s, samples, late[0])


def item_lines(n: int, budget: int) -> list[bytes]:
    """`n` JSONL items, two partitions, padded so that together they fill about `budget` bytes."""
    pad = max(0, budget // n - 80)
    lines = []
    for i in range(n):
        part = "test" if i % 2 else "unseen"
        text = f"item {i}: " + ("lorem ipsum " * (pad // 12 + 1))[:pad]
        lines.append(json.dumps({"id": f"i{i}", "partition": part, "text": text}).encode() + b"\n")
    return lines


def multipart(fields: dict[str, tuple[str | None, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = []
    for name, (filename, data) in fields.items():
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.append(f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def cases(max_items: int = MAX_ITEMS, max_body: int = MAX_BODY_BYTES) -> dict[str, tuple[str, bytes, str]]:
    """name: (path with query, body, content type)."""
    query = "/v1/scans?model=mock&probe=loss&reference=unseen&name=big"
    lines = item_lines(max_items, max_body - 64 * 1024)  # room for the JSON and multipart framing
    rows = [json.loads(line) for line in lines]
    request = {"model": "mock", "reference": "unseen", "benchmark": {"name": "big", "items": rows}}
    form, form_type = multipart(
        {
            "request": (None, json.dumps({"model": "mock", "reference": "unseen"}).encode()),
            "file": ("big.jsonl", b"".join(lines)),
        }
    )
    return {
        "jsonl-100k": (query, b"".join(item_lines(100_000, 80 * 100_000)[:100_000]), NDJSON),
        "jsonl-max": (query, b"".join(lines), NDJSON),
        "json-max": ("/v1/scans", json.dumps(request).encode(), "application/json"),
        "multipart-max": ("/v1/scans", form, form_type),
    }


def run(names: list[str], pollers: int) -> dict[str, Stall]:
    out: dict[str, Stall] = {}
    built = cases()
    with tempfile.TemporaryDirectory(prefix="contam-upload-stall-") as tmp:
        for name in names:
            root = Path(tmp) / name
            root.mkdir()
            config = write_config(
                root / "server.yaml",
                store=f"sqlite:///{root / 'jobs.sqlite'}",
                cache_path=str(root / "calls.sqlite"),
                models=[{"name": "mock", "spec": "mock"}],
                limits={"max_body_bytes": MAX_BODY_BYTES, "max_items": MAX_ITEMS, "max_active_jobs": 100},
            )
            key = create_key(config, "alice")
            with ServiceProcess(config, workers=0, log_path=root / "service.log") as service:
                path, body, ctype = built[name]
                measure(service.url, key, b"{}", "application/json", pollers=1, settle_s=0.1)  # warm up
                out[name] = measure(service.url, key, body, ctype, path=path, pollers=pollers)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="jsonl-100k,jsonl-max,json-max,multipart-max")
    parser.add_argument("--pollers", type=int, default=4)
    args = parser.parse_args(argv)
    for name, stall in run(args.cases.split(","), args.pollers).items():
        print(stall.line(name), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__: list[Any] = ["Stall", "cases", "measure", "multipart"]

"""A stand-in for `python -m vllm.entrypoints.openai.api_server` that replays a real vLLM log.

Usage: fake_vllm_server.py PORT NAME LOG MODE, where MODE is
  exit             print LOG and exit 1 at once (a start-up crash)
  die-on-request   answer /health and /v1/models; on the first completion print LOG, answer 500
                   and exit 1 (an engine that dies on its first request)
  die-later        answer everything; 2 s after the first completion (or 10 s after start, if none
                   comes) print LOG and exit 1
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PORT, NAME, LOG, MODE = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]


def replay() -> None:
    sys.stdout.buffer.write(LOG.read_bytes())  # as written: vLLM ends some lines in \r\n
    sys.stdout.flush()


def replay_and_exit(delay: float, *, replayed: bool = False) -> None:
    time.sleep(delay)
    if not replayed:
        replay()
    os._exit(1)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self.reply(200, {})
        elif self.path == "/v1/models":
            self.reply(200, {"data": [{"id": NAME}]})
        else:
            self.reply(404, {})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if MODE == "die-on-request":
            replay()  # vLLM logs the engine's traceback before it answers 500
            self.reply(500, {"error": {"message": "EngineCore encountered an issue.", "code": 500}})
            threading.Thread(target=replay_and_exit, args=(0.2,), kwargs={"replayed": True}).start()
            return
        self.reply(200, {"choices": [{"text": "x", "index": 0}]})
        if MODE == "die-later":
            threading.Thread(target=replay_and_exit, args=(2.0,), daemon=True).start()


if __name__ == "__main__":
    if MODE == "exit":
        replay_and_exit(0.0)
    if MODE == "die-later":
        threading.Thread(target=replay_and_exit, args=(10.0,), daemon=True).start()
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()

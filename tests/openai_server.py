"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests (judges, remote generation).

``answer(request_json) -> str`` decides the reply text; the first token's top logprobs are built from
``logprobs(request_json) -> {token: logprob}`` when the request asks for them. Faults are injected
at configured rates with a seeded RNG: 429 with Retry-After, 500, timeouts (the reply is delayed
beyond the client's timeout), truncated JSON bodies and 401s that quote the caller's key. Every
request is logged for assertions.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Faults:
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_truncated: float = 0.0
    rate_401_echo: float = 0.0  # 401 quoting the caller's key back, as OpenAI's "Incorrect API key provided" does
    timeout_sleep_s: float = 1.5
    latency_s: float = 0.0  # every request waits this long (a server busy generating), to measure concurrency
    seed: int = 0


@dataclass
class FakeOpenAI:
    answer: Callable[[dict], str]
    logprobs: Callable[[dict], dict[str, float]] | None = None
    faults: Faults = field(default_factory=Faults)
    serves_n: bool = True  # False: a server that ignores the request's n and answers one choice
    requests: list[dict] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=lambda: {"429": 0, "500": 0, "timeout": 0, "truncated": 0, "401_echo": 0})

    def __post_init__(self):
        self.rng = random.Random(self.faults.seed)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _pick_fault(self) -> str | None:
        with self.lock:
            draw = self.rng.random()
            for name, rate in (("429", self.faults.rate_429), ("500", self.faults.rate_500),
                               ("timeout", self.faults.rate_timeout), ("truncated", self.faults.rate_truncated),
                               ("401_echo", self.faults.rate_401_echo)):
                if draw < rate:
                    self.injected[name] += 1
                    return name
                draw -= rate
        return None

    def _completion(self, request: dict) -> dict:
        """One choice, or ``n`` when asked and ``serves_n`` (each from ``answer``, called again)."""
        n = request.get("n", 1) if self.serves_n else 1
        texts = [self.answer(request) for _ in range(n)]
        text = texts[0]
        choice: dict = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
        if request.get("logprobs"):
            top = (self.logprobs or (lambda r: {text[:1] or " ": 0.0}))(request)
            first = max(top, key=top.get)
            choice["logprobs"] = {"content": [{
                "token": first, "logprob": top[first], "bytes": None,
                "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()],
            }]}
        return {"id": "cmpl-test", "object": "chat.completion", "created": int(time.time()),
                "model": request.get("model", "test"),
                "choices": [choice, *({"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": t}}
                                      for i, t in enumerate(texts[1:], 1))],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with outer.lock:
                    outer.requests.append({"body": request, "headers": {k.lower(): v for k, v in self.headers.items()}})
                time.sleep(outer.faults.latency_s)
                fault = outer._pick_fault()
                if fault == "429":
                    return self._send(429, b'{"error": {"message": "rate limited"}}', {"Retry-After": "0.05"})
                if fault == "401_echo":
                    key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    body = {"error": {"message": f"Incorrect API key provided: {key}", "code": "invalid_api_key"}}
                    return self._send(401, json.dumps(body).encode())
                if fault == "500":
                    return self._send(500, b'{"error": {"message": "server error"}}')
                if fault == "timeout":
                    time.sleep(outer.faults.timeout_sleep_s)
                body = json.dumps(outer._completion(request)).encode()
                if fault == "truncated":
                    body = body[: len(body) // 2]
                self._send(200, body)

        return Handler

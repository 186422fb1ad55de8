"""Client for any OpenAI-compatible chat-completions endpoint (OpenRouter, vLLM, Ollama, OpenAI).

Used for remote generation and for LLM judges. Runs requests concurrently under a rate limit,
retries 429 / 5xx / timeouts / malformed answers with exponential backoff (honouring
``Retry-After``), and returns a failure *record* after the last retry instead of raising, so a long
run never loses the rest of its work. The API key is read from the environment only and is
redacted from every error message the client reports.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from workbench.errors import InputFormatError

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_BASE_URL_ENV = "OPENAI_BASE_URL"


@dataclass(frozen=True)
class ApiConfig:
    """Where and how to call. ``api_key_env`` names the environment variable holding the key."""

    base_url: str
    model: str
    api_key_env: str = DEFAULT_KEY_ENV
    max_concurrency: int = 8
    max_retries: int = 5
    requests_per_second: float = 10.0
    timeout_s: float = 60.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0

    @classmethod
    def from_env(cls, model: str, base_url: str | None = None, **overrides: Any) -> "ApiConfig":
        """Config with the base URL from the argument or ``$OPENAI_BASE_URL``."""
        url = base_url or os.environ.get(DEFAULT_BASE_URL_ENV)
        if not url:
            raise InputFormatError(f"no API base URL: pass --api URL or set ${DEFAULT_BASE_URL_ENV}")
        return cls(base_url=url, model=model, **overrides)

    def api_key(self) -> str:
        # Local servers (vLLM, Ollama) accept any key; the openai client insists on one.
        return os.environ.get(self.api_key_env) or "not-needed"

    def __repr__(self) -> str:  # never shows the key (it is not stored here anyway)
        return f"ApiConfig(base_url={self.base_url!r}, model={self.model!r}, key from ${self.api_key_env})"


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completions call."""

    messages: tuple[dict[str, str], ...]
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    top_logprobs: int | None = None
    n: int = 1  # samples in one request (vLLM and OpenAI support it; a server that ignores it returns one)


@dataclass(frozen=True)
class ChatResult:
    """The answer text (None on failure), its first-token top logprobs if asked, the error if any."""

    text: str | None
    first_token_logprobs: dict[str, float] | None = None
    error: str | None = None
    attempts: int = 1
    texts: tuple[str, ...] = ()  # every choice's text (several when ``n`` > 1 was asked and served)

    @property
    def ok(self) -> bool:
        return self.error is None


def _checked_text(text: Any) -> str:
    if text is None:
        raise ValueError("response message has no content")
    if not isinstance(text, str):
        raise ValueError(f"response message content is a {type(text).__name__}; expected a string")
    return text


def _checked_logprob(token: Any, logprob: Any) -> tuple[str, float]:
    """One top-logprob entry, checked: the openai client does not validate responses, so a server
    sending a non-string token or a logprob that is not a number ≤ 0 would otherwise crash a judge's
    arithmetic (``exp(5000)``) far from the cause. Raises ValueError, which is retried."""
    if not isinstance(token, str):
        raise ValueError(f"logprob token {token!r} is not a string")
    if isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or math.isnan(logprob) or logprob > 1e-6:
        raise ValueError(f"logprob of token {token!r} is {logprob!r}; expected a number ≤ 0")
    return token, min(float(logprob), 0.0)


class RateLimiter:
    """Spaces request starts at least ``1 / rate`` seconds apart across threads."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_start = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        time.sleep(max(0.0, start - now))


class ChatClient:
    """Concurrent, rate-limited, retrying chat-completions client."""

    def __init__(self, config: ApiConfig, validate: Callable[[ChatResult], None] | None = None):
        """``validate`` may raise ValueError on an unusable answer (e.g. a non-numeric judge score),
        which is retried like a transport fault."""
        from openai import OpenAI

        self.config = config
        self.validate = validate
        self.limiter = RateLimiter(config.requests_per_second)
        self.client = OpenAI(
            base_url=config.base_url, api_key=config.api_key(), max_retries=0, timeout=config.timeout_s
        )

    def _redact(self, message: str) -> str:
        key = os.environ.get(self.config.api_key_env)
        return message.replace(key, "[redacted]") if key else message

    def _call(self, request: ChatRequest) -> ChatResult:
        kwargs: dict[str, Any] = dict(
            model=self.config.model, messages=list(request.messages), temperature=request.temperature,
            top_p=request.top_p, max_tokens=request.max_tokens,
        )
        if request.top_logprobs:
            kwargs.update(logprobs=True, top_logprobs=request.top_logprobs)
        if request.n > 1:
            kwargs.update(n=request.n)
        response = self.client.chat.completions.create(**kwargs)
        if not response.choices:
            raise ValueError("response has no choices")
        texts = tuple(_checked_text(c.message.content) for c in response.choices[: request.n])
        choice, text = response.choices[0], texts[0]
        logprobs = None
        if request.top_logprobs:
            content = choice.logprobs.content if choice.logprobs else None
            if not content:
                raise ValueError("logprobs were requested but the response has none")
            logprobs = dict(_checked_logprob(item.token, item.logprob) for item in content[0].top_logprobs)
        return ChatResult(text=text, first_token_logprobs=logprobs, texts=texts)

    def _retry_delay(self, exc: Exception, attempt: int) -> float:
        response = getattr(exc, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after:
            try:
                return min(float(retry_after), self.config.backoff_max_s)
            except ValueError:
                pass
        backoff = self.config.backoff_base_s * 2**attempt
        return min(backoff, self.config.backoff_max_s) * (0.5 + random.random() / 2)

    def complete(self, request: ChatRequest) -> ChatResult:
        """One request with retries; never raises for API faults, returns a failed ChatResult."""
        import openai

        last_error = ""
        for attempt in range(self.config.max_retries + 1):
            self.limiter.wait()
            try:
                result = self._call(request)
                if self.validate is not None:
                    self.validate(result)
                return ChatResult(result.text, result.first_token_logprobs, None, attempt + 1, result.texts)
            except (openai.APIError, ValueError, KeyError, TypeError, AttributeError) as exc:
                status = getattr(exc, "status_code", None)
                last_error = self._redact(f"{type(exc).__name__}{f' {status}' if status else ''}: {exc}")
                if status is not None and 400 <= status < 500 and status not in (408, 409, 429):
                    break  # the request itself is wrong: retrying will not help
                if attempt < self.config.max_retries:
                    time.sleep(self._retry_delay(exc, attempt))
        return ChatResult(text=None, error=last_error[:500], attempts=attempt + 1)

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Results in the order of ``requests``, run ``max_concurrency`` at a time."""
        with ThreadPoolExecutor(max_workers=self.config.max_concurrency) as pool:
            return list(pool.map(self.complete, requests))

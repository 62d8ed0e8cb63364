"""Lambda REQUEST authorizers (identity, decision, cached answers) and the stage's throttling."""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from local.gateway.payload import HttpRequest
from local.gateway.responses import InvalidResponse
from local.gateway.routes import AuthorizerConfig, Throttle

Clock = Callable[[], float]


class AuthorizerCache:
    """The authorizer's answers (allowed, context) per identity, each kept ``ttl`` seconds."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, ...], tuple[float, bool, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> tuple[bool, dict[str, Any]] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._clock() < entry[0]:
                return entry[1], entry[2]
            self._entries.pop(key, None)
            return None

    def put(self, key: tuple[str, ...], allowed: bool, context: dict[str, Any], ttl: int) -> None:
        if ttl > 0:
            with self._lock:
                self._entries[key] = (self._clock() + ttl, allowed, context)


class TokenBucket:
    """The stage's default route throttling: ``burst`` requests at once, refilled at ``rate`` per second."""

    def __init__(self, throttle: Throttle, clock: Clock = time.monotonic) -> None:
        self._throttle = throttle
        self._clock = clock
        self._tokens = float(throttle.burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            refill = (now - self._updated) * self._throttle.rate
            self._tokens = min(float(self._throttle.burst), self._tokens + refill)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def identity_values(request: HttpRequest, sources: Sequence[str]) -> list[str] | None:
    """The identity source values, or None if one is missing or empty."""
    values: list[str] = []
    for source in sources:
        kind, _, name = source.removeprefix("$request.").partition(".")
        value = request.header(name) if kind == "header" else request.query.get(name)
        if not value:
            return None
        values.append(value)
    return values


def authorizer_decision(result: Any, config: AuthorizerConfig, route_arn: str) -> tuple[bool, dict[str, Any]]:
    """(allowed, context) from an authorizer's answer: a simple response, or an IAM policy."""
    if not isinstance(result, dict):
        raise InvalidResponse("not a JSON object")
    context = result.get("context") or {}
    if not isinstance(context, dict):
        raise InvalidResponse("context is not an object")
    if config.simple_responses:
        allowed = result.get("isAuthorized")
        if not isinstance(allowed, bool):
            raise InvalidResponse("isAuthorized is not a boolean")
        return allowed, context
    document = result.get("policyDocument")
    if not isinstance(document, dict):
        raise InvalidResponse("no policyDocument")
    return _policy_allows(document, route_arn), context


def _policy_allows(document: Mapping[str, Any], route_arn: str) -> bool:
    """An explicit Deny wins over any Allow, as in IAM."""
    statements = document.get("Statement") or []
    allowed = False
    for statement in [statements] if isinstance(statements, dict) else statements:
        actions = _listed(statement.get("Action") or [])
        resources = _listed(statement.get("Resource") or [])
        applies = any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions) and any(
            fnmatch.fnmatchcase(route_arn, r) for r in resources
        )
        if applies and statement.get("Effect") == "Deny":
            return False
        allowed = allowed or (applies and statement.get("Effect") == "Allow")
    return allowed


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value

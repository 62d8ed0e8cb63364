"""Powertools Logger, Tracer and Metrics shared by every function (configured by POWERTOOLS_* variables).

The Tracer is Powertools' own, built on the first traced call and only when tracing is on. Powertools
loads the X-Ray SDK (which creates botocore clients) for any Tracer, even a disabled one, so building it
at import would make every cold start with tracing off pay for a recorder it never uses.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "feedback"
TRACED_LIBRARIES = ("botocore",)
"""What the X-Ray SDK patches: the service's only outgoing calls are AWS SDK ones. Powertools would patch
every library the SDK knows and finds installed (requests, httpx, sqlite3, http.client...), importing
each at the first traced call for nothing."""

Traced = TypeVar("Traced", bound=Callable[..., Any])


class LazyTracer:
    """Powertools' Tracer when tracing is on (POWERTOOLS_TRACE_DISABLED unset or false, in Lambda, by
    Powertools' own rule), else nothing: a decorated function is then called as it is."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._tracer: Tracer | None = None
        self._decided = False

    def get(self) -> Tracer | None:
        """The process's Tracer, built on first use; None when tracing is off."""
        if not self._decided:
            self._tracer = (
                None
                if Tracer._is_tracer_disabled()
                else Tracer(service=self.service, patch_modules=TRACED_LIBRARIES)
            )
            self._decided = True
        return self._tracer

    def forget(self) -> None:
        """Decide again on the next traced call (tests switch tracing on and off)."""
        self._tracer, self._decided = None, False

    def capture_method(self, method: Traced) -> Traced:
        """``Tracer.capture_method``, applied when the method is first called with tracing on."""
        return self._lazily(method, lambda tracer: tracer.capture_method(method))

    def capture_lambda_handler(self, handler: Traced) -> Traced:
        """``Tracer.capture_lambda_handler``, applied when the handler is first called with tracing on."""
        return self._lazily(handler, lambda tracer: tracer.capture_lambda_handler(handler))

    def _lazily(self, function: Traced, decorate: Callable[[Tracer], Callable[..., Any]]) -> Traced:
        if inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function):
            raise TypeError(f"{function.__qualname__}: only plain functions are traced here")
        decorated: dict[Tracer, Callable[..., Any]] = {}

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            tracer = self.get()
            if tracer is None:
                return function(*args, **kwargs)
            if tracer not in decorated:
                decorated.clear()
                decorated[tracer] = decorate(tracer)
            return decorated[tracer](*args, **kwargs)

        return cast(Traced, call)


logger = Logger(service=SERVICE)
tracer = LazyTracer(SERVICE)
metrics = Metrics(service=SERVICE, namespace="FeedbackService")

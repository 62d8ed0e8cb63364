"""The template's Lambda functions, run in this process: their real handler modules, one at a time.

Each function is loaded from its code folder (``CodeUri``) and ``Handler`` by file path, under a module
name of its own (every handler file is called ``app.py``). Lambda runs one invocation at a time per
execution environment, and the handlers rely on it: Powertools' resolver keeps ``current_event`` in
module state, and here all functions also share Powertools' process-wide logger, metrics and tracer.
So invocations are serialised, all functions together (:data:`INVOCATION_LOCK`); the gateway and the
pollers still accept and read concurrently.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

log = logging.getLogger("local.functions")

Handler = Callable[[Any, Any], Any]
INVOCATION_LOCK = threading.Lock()
"""Held during every invocation (a handler must not call the local API and wait for it)."""


class FunctionError(RuntimeError):
    """The handler raised (Lambda's "Unhandled" function error)."""


class Invocable(Protocol):
    """What the gateway and the pollers invoke: a :class:`LocalFunction`, or a test double."""

    @property
    def arn(self) -> str: ...

    def invoke(self, event: Any) -> Any:
        """The handler's result; raises :class:`FunctionError` if the handler raised."""
        ...


@dataclass
class LambdaContext:
    """The context object Lambda passes to a Python handler (the attributes Powertools and handlers read)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: int
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def lambda_context(function_name: str = "test-function", timeout_seconds: int = 30) -> LambdaContext:
    """A context for a handler invoked outside a :class:`LocalFunction` (tests)."""
    return LocalFunction(
        logical_id=function_name,
        name=function_name,
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}",
        code_dir=Path(),
        handler="app.lambda_handler",
        timeout=timeout_seconds,
    ).context()


@dataclass
class LocalFunction:
    """One function of the template: its configuration as deployed, and its handler loaded from its code."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    """``module.function`` as in the template's ``Handler`` (e.g. ``app.lambda_handler``)."""
    timeout: int = 3
    memory: int = 128
    log_group: str = ""
    _callable: Handler | None = field(default=None, repr=False)

    @classmethod
    def from_configuration(
        cls, logical_id: str, code_dir: Path, configuration: Mapping[str, Any]
    ) -> LocalFunction:
        """From Lambda's GetFunctionConfiguration answer and the function's code folder."""
        logging_config = configuration.get("LoggingConfig") or {}
        name = str(configuration["FunctionName"])
        return cls(
            logical_id=logical_id,
            name=name,
            arn=str(configuration["FunctionArn"]),
            code_dir=code_dir,
            handler=str(configuration.get("Handler") or "app.lambda_handler"),
            timeout=int(configuration.get("Timeout") or 3),
            memory=int(configuration.get("MemorySize") or 128),
            log_group=str(logging_config.get("LogGroup") or f"/aws/lambda/{name}"),
        )

    def load(self) -> Handler:
        """Imports the handler module (once) and returns the handler function."""
        if self._callable is None:
            module_path, _, function = self.handler.rpartition(".")
            if not module_path or not function:
                raise ValueError(f"{self.logical_id}: Handler {self.handler!r} is not <module>.<function>")
            file = self.code_dir.joinpath(*module_path.split(".")).with_suffix(".py")
            module_name = "local_function_" + re.sub(r"\W", "_", f"{self.logical_id}_{module_path}")
            module = sys.modules.get(module_name) or import_file(module_name, file)
            handler = getattr(module, function, None)
            if not callable(handler):
                raise ValueError(f"{self.logical_id}: {file} has no function {function}")
            self._callable = handler
        return self._callable

    def context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self.name,
            function_version="$LATEST",
            invoked_function_arn=self.arn,
            memory_limit_in_mb=self.memory,
            aws_request_id=str(uuid.uuid4()),
            log_group_name=self.log_group,
            log_stream_name=time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
            deadline_ms=int(time.time() * 1000) + self.timeout * 1000,
        )

    def invoke(self, event: Any) -> Any:
        """Runs the handler on ``event`` and returns its result; :class:`FunctionError` if it raised.

        The function's ``Timeout`` is given to the handler through the context but is not enforced
        (a thread cannot be stopped); an invocation that overran it is logged.
        """
        handler = self.load()
        with INVOCATION_LOCK:
            context = self.context()
            started = time.monotonic()
            try:
                return handler(event, context)
            except Exception as exc:
                log.exception("%s raised (request id %s)", self.logical_id, context.aws_request_id)
                raise FunctionError(f"{self.logical_id}: {type(exc).__name__}: {exc}") from exc
            finally:
                elapsed = time.monotonic() - started
                if elapsed > self.timeout:
                    log.warning(
                        "%s ran %.1f s, longer than its Timeout of %d s (Lambda would have stopped it)",
                        self.logical_id,
                        elapsed,
                        self.timeout,
                    )


def import_file(module_name: str, file: Path) -> ModuleType:
    """Imports a source file as a module of the given name (every handler file is called app.py)."""
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def merged_environment(environments: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The union of the functions' environments; a variable two functions set differently is an error.

    All handlers share this process, and ``feedback_core`` reads its settings once per process, so
    they run with one environment. The template gives each function only the variables it needs,
    and shared names (``FEEDBACK_TABLE``, ``TOKEN_ISSUER``, ...) have the same value everywhere.
    """
    merged: dict[str, str] = {}
    owners: dict[str, str] = {}
    for logical_id, environment in environments.items():
        for name, value in environment.items():
            if name in merged and merged[name] != value:
                raise ValueError(
                    f"{owners[name]} and {logical_id} set {name} differently ({merged[name]!r} and "
                    f"{value!r}); the local stack runs every function in one process with one environment"
                )
            merged[name] = value
            owners.setdefault(name, logical_id)
    return merged

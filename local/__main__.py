"""``python -m local`` (``make run``): the whole service on this machine, in the foreground, until Ctrl-C
or SIGTERM (exit code 0); a port already taken is reported before anything slow starts (exit code 2)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from local.gateway import Gateway, GatewayServer  # light: the standard library only
from local.template import REGION
from local.ttl import DEFAULT_SWEEP_SECONDS

if TYPE_CHECKING:
    from local.stack import LocalStack

STARTED = time.monotonic()
_REPEAT_GRACE_SECONDS = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local", description="Run the feedback service locally.")
    add = parser.add_argument
    add("--port", type=int, default=int(os.environ.get("PORT") or 3000), help="default: $PORT or 3000")
    add("--host", default="127.0.0.1", help="gateway address (default: 127.0.0.1)")
    add("--persist", type=Path, metavar="DIR", help="keep tables, keys and secrets in DIR across restarts")
    add("--state-dir", type=Path, default=Path(".local"), metavar="DIR", help="for credentials.json")
    add("--parameter", action="append", default=[], metavar="NAME=VALUE", help="a template parameter")
    sweep = "expire items as DynamoDB's TTL does, every SECONDS (default %(default)g; 0: never)"
    add("--ttl-sweep-seconds", type=float, default=DEFAULT_SWEEP_SECONDS, metavar="SECONDS", help=sweep)
    add("--project", default="demo", help="project of the demo API key (default: demo)")
    add("--quiet", action="store_true", help="no access log, functions log warnings only")
    args = parser.parse_args(argv)
    if args.ttl_sweep_seconds < 0:
        parser.error("--ttl-sweep-seconds: expected 0 (never) or a positive number of seconds")
    for item in args.parameter:
        if "=" not in item:
            parser.error(f"--parameter {item!r}: expected NAME=VALUE")
    return args


class _Stop(Exception):
    """SIGINT or SIGTERM, raised in the main thread."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        server = GatewayServer(args.host, args.port, Gateway())
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is already in use (is another `make run` running?)"
        else:
            reason = exc.strerror or str(exc)
        print(
            f"error: cannot listen on {args.host}:{args.port}: {reason}. "
            f"Stop the other process, or choose another port: PORT={args.port + 1} make run",
            file=sys.stderr,
        )
        return 2

    # The functions log JSON lines to stdout, as in Lambda: show them as they come, even in a pipe.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    log_format = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=log_format, datefmt="%H:%M:%S")
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3", "moto", "samtranslator", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("local.access").setLevel(logging.WARNING if args.quiet else logging.INFO)
    log = logging.getLogger("local")
    stopping_since: float | None = None

    def on_signal(number: int, frame: FrameType | None) -> None:
        nonlocal stopping_since
        if stopping_since is not None:
            # The same signal often arrives twice (to the process and to its group): only a later
            # one, from someone who waited, forces the exit.
            if time.monotonic() - stopping_since > _REPEAT_GRACE_SECONDS:
                print("second signal while stopping: exiting now", file=sys.stderr, flush=True)
                os._exit(1)
            return
        stopping_since = time.monotonic()
        raise _Stop(signal.Signals(number).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    from local.stack import LocalStack, Options  # noqa: PLC0415 (heavy: moto, boto3, samtranslator)

    fields = vars(args) | {"port": server.port, "parameters": dict(p.split("=", 1) for p in args.parameter)}
    del fields["parameter"]  # the other options are named as Options' fields
    stack = LocalStack(Options(**fields), server)
    code = 0
    try:
        stack.start()
        print(banner(stack, time.monotonic() - STARTED), flush=True)
        signal.pause()
    except _Stop as stop:
        log.info("%s: stopping", stop)
    except Exception:
        log.exception("the local stack failed")
        code = 1
    finally:
        if stopping_since is None:
            stopping_since = time.monotonic()
        stack.stop()
    log.info("stopped")
    return code


def banner(stack: LocalStack, seconds: float) -> str:
    url, key, persist = stack.endpoint, stack.api_key, stack.options.persist
    request_body = '{"run_id": "run-1", "user_id": "user-1"}'
    extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"feedback_token\"])'"
    data = f"kept in {persist} (--persist)" if persist else "in memory (gone at exit; --persist DIR keeps it)"
    token = (
        f'TOKEN=$(curl -s -X POST {url}/v1/tokens -H "Authorization: Bearer $FEEDBACK_API_KEY" '
        f"-H 'content-type: application/json' -d '{request_body}' | {extract})"
    )
    vote = """-H 'content-type: application/json' -d '{"outcome": "positive", "comment": "spot on"}'"""
    return f"""
Feedback service running at {url}  (ready in {seconds:.1f} s)

  Demo page:   {url}/
  API docs:    {url}/v1/docs
  Project:     {stack.options.project}
  API key:     {key}
  Credentials: {stack.credentials_path}  (AWS emulator {stack.moto_url}, {REGION})
  Events:      make events   (SQS queues {stack.taps["events_queue"]} and {stack.taps["sns_queue"]})
  Data:        {data}

Try it (paste into a shell):

export FEEDBACK_API_KEY={key}
{token}
curl -s -X POST {url}/v1/feedback -H "X-Feedback-Token: $TOKEN" {vote}
curl -s "{url}/v1/feedback?limit=5" -H "Authorization: Bearer $FEEDBACK_API_KEY"

Ctrl-C stops it.
"""


if __name__ == "__main__":
    sys.exit(main())

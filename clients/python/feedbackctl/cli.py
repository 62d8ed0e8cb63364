"""``feedbackctl``: the feedback service's HTTP API from the command line.

Configuration comes from options or the environment (``FEEDBACK_ENDPOINT``, ``FEEDBACK_API_KEY``).
Tables and progress go to the terminal; ``--output json`` prints JSON on stdout for scripts. Errors are
one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from feedback_client import API_KEY_ENV, ENDPOINT_ENV, FeedbackClient, FeedbackError, FeedbackRecord
from feedback_client._core import DEFAULT_TIMEOUT
from feedback_client.models import Outcome
from feedbackctl import events as event_taps
from feedbackctl.chart import daily_bars
from feedbackctl.exporting import export
from feedbackctl.files import FileFormat, RecordReader, count_records, format_of
from feedbackctl.sqs import SqsClient, SqsError


def stdout() -> Console:
    # Built per use, so the terminal's size (or COLUMNS) at that moment applies.
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


FAILURES = (FeedbackError, OSError, ValueError, event_taps.LocalStackMissing, SqsError)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


class ExportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


class OutcomeChoice(StrEnum):
    positive = "positive"
    negative = "negative"


class GranularityChoice(StrEnum):
    day = "day"
    total = "total"


def fail(message: str) -> NoReturn:
    typer.echo(f"feedbackctl: {' '.join(message.split())}", err=True)
    raise typer.Exit(1)


class OneLineErrors(TyperGroup):
    """Any failure the user can act on ends the command with one line on stderr and exit status 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except FAILURES as error:
            fail(str(error))


@dataclass
class Options:
    endpoint: str | None
    api_key: str | None
    timeout: float
    output: OutputFormat

    @property
    def json(self) -> bool:
        return self.output is OutputFormat.json

    def client(self) -> FeedbackClient:
        return FeedbackClient(self.endpoint, self.api_key, timeout=self.timeout)


def typer_app(name: str, help_text: str) -> typer.Typer:
    return typer.Typer(
        name=name,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


HELP = """The feedback service's HTTP API from the command line.

Configuration comes from the options below or the environment (FEEDBACK_ENDPOINT, FEEDBACK_API_KEY).
Tables and progress go to the terminal; --output json prints JSON on stdout for scripts. Errors are one
line on stderr and a non-zero exit status.
"""

app = typer.Typer(
    help=HELP,
    cls=OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
tokens_app = typer_app("tokens", "Feedback tokens for AI responses.")
feedback_app = typer_app("feedback", "List, export and import feedback records.")
users_app = typer_app("users", "Users' feedback as a whole (erasure).")
events_app = typer_app("events", "The local stack's events.")
for sub_app in (tokens_app, feedback_app, users_app, events_app):
    app.add_typer(sub_app)


@app.callback()
def configure(
    ctx: typer.Context,
    endpoint: Annotated[
        str | None, typer.Option(envvar=ENDPOINT_ENV, help="Service URL, e.g. http://127.0.0.1:3000")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar=API_KEY_ENV, help="API key (fbk_...)", show_default=False)
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each request")] = DEFAULT_TIMEOUT,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table for people, json for scripts")
    ] = OutputFormat.table,
) -> None:
    ctx.obj = Options(endpoint, api_key, timeout, output)


def options(ctx: typer.Context) -> Options:
    found: Options = ctx.find_object(Options)  # type: ignore[assignment]
    return found


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False))


def json_object(text: str | None, name: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint=name) from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=name)
    return value


# -------------------------------------------------------------------------------------------- tokens


@tokens_app.command("issue")
def tokens_issue(
    ctx: typer.Context,
    *,
    run_id: Annotated[str, typer.Argument(help="The AI response (run) the feedback will be about")],
    user_id: Annotated[str | None, typer.Option(help="Bind the token to this user")] = None,
    session_id: Annotated[str | None, typer.Option(help="Conversation the run belongs to")] = None,
    agent: Annotated[str | None, typer.Option(help="Agent that produced the run")] = None,
    context: Annotated[str | None, typer.Option(help="JSON object copied onto the record")] = None,
    ttl: Annotated[int | None, typer.Option(help="Seconds the token is valid (default: the maximum)")] = None,
) -> None:
    """Issue a feedback token for one run (prints the token; its expiry goes to stderr)."""
    settings = options(ctx)
    with settings.client() as client:
        token = client.issue_token(
            run_id,
            user_id=user_id,
            session_id=session_id,
            agent=agent,
            context=json_object(context, "--context"),
            ttl_seconds=ttl,
        )
    if settings.json:
        print_json(token.model_dump(mode="json"))
    else:
        typer.echo(token.feedback_token)
        stderr().print(f"expires at {token.expires_at.isoformat()}")


# ------------------------------------------------------------------------------------------ feedback

StartOption = Annotated[
    str | None, typer.Option(help="From this date or date-time (YYYY-MM-DD, or with a zone)")
]
EndOption = Annotated[str | None, typer.Option(help="Before this date or date-time")]
OutcomeOption = Annotated[OutcomeChoice | None, typer.Option(help="Only this outcome")]
SessionOption = Annotated[str | None, typer.Option(help="Only this session")]
UserOption = Annotated[str | None, typer.Option(help="Only this user")]
AgentOption = Annotated[str | None, typer.Option(help="Only this agent")]
SourceOption = Annotated[str | None, typer.Option(help="Only this source (web, backend, ...)")]


def list_filters(
    *,
    start: str | None,
    end: str | None,
    outcome: OutcomeChoice | None,
    session_id: str | None,
    user_id: str | None,
    agent: str | None,
    source: str | None,
) -> dict[str, Any]:
    chosen: Outcome | None = "positive" if outcome is OutcomeChoice.positive else None
    if outcome is OutcomeChoice.negative:
        chosen = "negative"
    values = {
        "start": start,
        "end": end,
        "outcome": chosen,
        "session_id": session_id,
        "user_id": user_id,
        "agent": agent,
        "source": source,
    }
    return {name: value for name, value in values.items() if value is not None}


def records_table(records: list[FeedbackRecord]) -> Table:
    table = Table("created_at", "run_id", "user_id", "outcome", "score", "agent", "source", "comment")
    for record in records:
        comment = record.comment or ""
        table.add_row(
            record.created_at.isoformat(timespec="seconds"),
            record.run_id,
            record.user_id,
            record.outcome or "",
            "" if record.score is None else str(record.score),
            record.agent or "",
            record.source,
            comment if len(comment) <= 40 else comment[:39] + "…",
        )
    return table


@feedback_app.command("list")
def feedback_list(
    ctx: typer.Context,
    *,
    start: StartOption = None,
    end: EndOption = None,
    outcome: OutcomeOption = None,
    session_id: SessionOption = None,
    user_id: UserOption = None,
    agent: AgentOption = None,
    source: SourceOption = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Records on this page")] = 20,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page")] = None,
) -> None:
    """List one page of feedback, newest first (the next page's --cursor goes to stderr)."""
    settings = options(ctx)
    filters = list_filters(
        start=start,
        end=end,
        outcome=outcome,
        session_id=session_id,
        user_id=user_id,
        agent=agent,
        source=source,
    )
    with settings.client() as client:
        page = next(client.list_feedback_pages(**filters, page_size=limit, cursor=cursor))
    if settings.json:
        print_json(page.model_dump(mode="json"))
        return
    stdout().print(records_table(page.items))
    if page.next_cursor:
        stderr().print(f"more: --cursor {page.next_cursor}", soft_wrap=True)


def progress_bar(description: str, total: int | None) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if total is not None else TextColumn("{task.completed} records"),
        TimeElapsedColumn(),
        console=stderr(),
        transient=False,
    )


@feedback_app.command("export")
def feedback_export(
    ctx: typer.Context,
    *,
    out: Annotated[Path, typer.Option("--out", help="File to write", dir_okay=False)],
    file_format: Annotated[
        ExportFormat | None, typer.Option("--format", help="csv or jsonl (default: from --out's suffix)")
    ] = None,
    start: StartOption = None,
    end: EndOption = None,
    outcome: OutcomeOption = None,
    session_id: SessionOption = None,
    user_id: UserOption = None,
    agent: AgentOption = None,
    source: SourceOption = None,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted export of the same file (from <out>.cursor)")
    ] = False,
    page_size: Annotated[int, typer.Option(min=1, max=100, help="Records per request")] = 100,
) -> None:
    """Export feedback to CSV (a header row, one row per record) or JSON Lines, with progress."""
    settings = options(ctx)
    chosen: FileFormat = format_of(out, file_format.value if file_format else None)
    filters = list_filters(
        start=start,
        end=end,
        outcome=outcome,
        session_id=session_id,
        user_id=user_id,
        agent=agent,
        source=source,
    )
    started = time.monotonic()
    with settings.client() as client, progress_bar(f"exporting to {out.name}", None) as progress:
        task = progress.add_task(f"exporting to {out.name}", total=None)

        def advance(written: int, total: int) -> None:
            progress.update(task, completed=total)

        records = export(client, out, chosen, filters, resume=resume, page_size=page_size, on_page=advance)
        progress.update(task, total=records, completed=records)
    seconds = time.monotonic() - started
    if settings.json:
        print_json({"file": str(out), "format": chosen, "records": records, "seconds": round(seconds, 3)})
    else:
        stderr().print(f"{records} records written to {out} in {seconds:.1f} s")


@feedback_app.command("import")
def feedback_import(
    ctx: typer.Context,
    *,
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines file", exists=True, dir_okay=False)],
    file_format: Annotated[
        ExportFormat | None, typer.Option("--format", help="csv or jsonl (default: from the suffix)")
    ] = None,
    errors: Annotated[
        Path | None, typer.Option(help="Where failed rows are written (default: <file>.errors.jsonl)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=100, help="Records per request")] = 100,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Requests in flight")] = 4,
) -> None:
    """Import feedback records (as a backend writes them) from CSV or JSON Lines, with progress.

    Rows that fail are written to the errors file, one JSON object per row ({"row", "run_id", "user_id",
    "code", "message"}, row 1 being the first record) and the command exits with status 1.
    """
    settings = options(ctx)
    chosen: FileFormat = format_of(file, file_format.value if file_format else None)
    errors_path = errors or file.with_name(file.name + ".errors.jsonl")
    total = count_records(file, chosen)
    reader = RecordReader(file, chosen)
    started = time.monotonic()
    with settings.client() as client, progress_bar(f"importing {file.name}", total) as progress:
        task = progress.add_task(f"importing {file.name}", total=total)
        report = client.import_feedback(
            reader,
            batch_size=batch_size,
            concurrency=concurrency,
            on_progress=lambda done: progress.advance(task, done),
        )
    seconds = time.monotonic() - started
    if report.failures:
        with errors_path.open("w", encoding="utf-8") as handle:
            for failure in report.failures:
                line = {
                    "row": failure.index + 1,
                    "run_id": failure.run_id,
                    "user_id": failure.user_id,
                    "code": failure.code,
                    "message": reader.unreadable.get(failure.index, failure.message),
                }
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    summary = {
        "file": str(file),
        "records": total,
        "created": report.created,
        "updated": report.updated,
        "failed": report.failed,
        "errors_file": str(errors_path) if report.failures else None,
        "seconds": round(seconds, 3),
    }
    if settings.json:
        print_json(summary)
    else:
        stderr().print(
            f"{report.created} created, {report.updated} updated, {report.failed} failed in {seconds:.1f} s"
        )
    if report.failures:
        fail(f"{report.failed} of {total} records failed; see {errors_path}")


# --------------------------------------------------------------------------------------------- stats


@app.command("stats")
def stats(
    ctx: typer.Context,
    *,
    start: Annotated[str | None, typer.Option(help="First UTC day (default: 30 days ago)")] = None,
    end: Annotated[str | None, typer.Option(help="Last UTC day (default: today)")] = None,
    agent: AgentOption = None,
    granularity: Annotated[GranularityChoice, typer.Option(help="day or total")] = GranularityChoice.day,
) -> None:
    """Exact counts of the project's feedback per UTC day, as a table and a small chart."""
    settings = options(ctx)
    with settings.client() as client:
        result = client.stats(
            start=start,
            end=end,
            agent=agent,
            granularity="total" if granularity is GranularityChoice.total else "day",
        )
    if settings.json:
        print_json(result.model_dump(mode="json"))
        return
    table = Table("day", "positive", "negative", "scores", "score sum", "weighted mean", "comments")
    for label, bucket in [*((b.start[:10], b) for b in result.buckets), ("total", result.total)]:
        mean = bucket.score_weighted_mean
        table.add_row(
            label,
            str(bucket.positive),
            str(bucket.negative),
            str(bucket.score_count),
            f"{bucket.score_sum:g}",
            "" if mean is None else f"{mean:.2f}",
            str(bucket.comments),
            end_section=label != "total" and bucket is result.buckets[-1],
        )
    stdout().print(table)
    if result.buckets:
        stdout().print(daily_bars(result.buckets), end="")


# --------------------------------------------------------------------------------------------- users


@users_app.command("erase")
def users_erase(
    ctx: typer.Context,
    *,
    user_id: Annotated[str, typer.Argument(help="The user whose feedback is erased")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase every feedback record of a user in the project (repeats until none is left)."""
    settings = options(ctx)
    if not yes and not typer.confirm(f"Erase all feedback of user {user_id!r}?"):
        fail("not erased")
    with settings.client() as client:
        erasure = client.erase_user(user_id)
    if settings.json:
        print_json({"user_id": user_id, **erasure.model_dump(mode="json")})
    else:
        stderr().print(f"erased {erasure.deleted} records of {user_id}")


# -------------------------------------------------------------------------------------------- events


@events_app.command("tail")
def events_tail(
    ctx: typer.Context,
    *,
    credentials: Annotated[
        Path, typer.Option(help="The local stack's credentials.json")
    ] = event_taps.DEFAULT_CREDENTIALS,
    once: Annotated[bool, typer.Option(help="Print what is queued now, then exit")] = False,
) -> None:
    """Print the local stack's events as they come: one line each (--output json: the whole message).

    Reads the bus and SNS tap queues of the stack's AWS emulator, deleting what it prints: run one tail
    at a time.
    """
    settings = options(ctx)
    found = event_taps.read_credentials(credentials)
    queues = event_taps.tap_queues(found)
    endpoint = str(found["aws_endpoint_url"])
    with httpx.Client(timeout=httpx.Timeout(30.0, connect=2.0)) as http:
        sqs = SqsClient(
            http,
            endpoint,
            str(found.get("aws_region") or "us-east-1"),
            event_taps.emulator_credentials(found),
        )
        if not once:
            stderr().print(f"watching {', '.join(queues.values())} (Ctrl-C stops)")
        try:
            while True:
                for source, body in event_taps.messages(sqs, queues, wait_seconds=0 if once else 1):
                    line = (
                        event_taps.as_json(source, body)
                        if settings.json
                        else event_taps.summary(source, body)
                    )
                    typer.echo(line)
                if once:
                    return
        except KeyboardInterrupt:
            return
        except SqsError as error:
            fail(f"cannot read the event queues at {endpoint} ({error}); is the local stack running?")


def main() -> None:
    app()

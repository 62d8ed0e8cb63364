"""Screenshots of the local stack for the README: the demo chat (``GET /``) and the dashboard.

    make screenshots                                   # starts a local stack of its own, then stops it
    make screenshots SCREENSHOTS_ARGS="--state-dir .local"   # uses the stack `make run` started

Demo data goes into a project of its own (``acme-support``, with a key made for it), so a running stack's
``demo`` project is left as it is. A month of feedback are written through the feedback store with its
clock set to each moment (the API stamps records with the current time, and a dashboard with one day of
data shows little); the stack's stream consumers then count them as they count any write. Runs, users and
moments come from a fixed seed, so the same records are upserted again on a second run and the counts do
not grow. Chromium is Debian's (``/usr/bin/chromium``), as in the browser tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
from playwright.sync_api import Page, sync_playwright

from feedback_core.apikeys import ApiKeyStore
from feedback_core.models import FeedbackSubmission
from feedback_core.store import FeedbackStore
from local.process import running

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
VIEWPORT = {"width": 1280, "height": 900}
PROJECT = "acme-support"
DAYS = 30  # the dashboard's default range
SEED = 20261123
STATS_TIMEOUT_S = 120.0
TIME_INDEX_SHARDS = 4  # the template's default TimeIndexShards, which the local stack uses

AGENTS = {  # agent: (share of the traffic, chance a vote is positive)
    "support-assistant": (0.5, 0.78),
    "billing-assistant": (0.3, 0.58),
    "search-assistant": (0.2, 0.7),
}
PRAISE = [
    "Solved it in one go, thanks!",
    "Clear steps, and the link to the settings page was right.",
    "Exactly what I needed.",
    "Good answer, though a bit long.",
    "Helpful: it found the invoice I was looking for.",
]
COMPLAINTS = [
    'It said the plan was "free", but I was charged.',
    "Wrong: the export button is under Settings, not Reports.",
    "Didn't understand my question about refunds.",
    "The answer cut off halfway through.",
    "Gave me the steps for the old version of the app.",
]


def seeded_records(today: datetime) -> Iterator[dict[str, Any]]:
    """The demo feedback: more each day, and better, as if the assistants were being improved."""
    rng = random.Random(SEED)  # noqa: S311 (demo data, not secrets)
    for offset in range(DAYS - 1, -1, -1):
        day = (today - timedelta(days=offset)).replace(hour=0, minute=0, second=0, microsecond=0)
        progress = 1 - offset / DAYS
        for index in range(rng.randint(8, 14) + int(10 * progress)):
            agent = rng.choices(list(AGENTS), weights=[share for share, _ in AGENTS.values()])[0]
            positive = rng.random() < AGENTS[agent][1] + 0.12 * progress
            moment = day + timedelta(seconds=rng.randint(7 * 3600, 20 * 3600))
            if moment > today:
                moment = today - timedelta(minutes=rng.randint(1, 90))
            fields: dict[str, Any] = {"outcome": "positive" if positive else "negative", "source": "web"}
            if rng.random() < 0.7:
                fields["score"] = rng.randint(4, 10) if positive else rng.randint(-8, 2)
            if rng.random() < 0.35:
                fields["comment"] = rng.choice(PRAISE if positive else COMPLAINTS)
            user = rng.randint(1, 60)
            yield {
                "moment": moment,
                "run_id": f"run-{day:%m%d}-{index:03d}",
                "user_id": f"user-{user:03d}",
                "session_id": f"session-{user:03d}-{day:%m%d}",
                "agent": agent,
                "fields": fields,
            }


def seed(credentials: dict[str, Any]) -> tuple[str, int]:
    """Writes the demo feedback and makes a key for its project: (API key, votes written)."""
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=credentials["dynamodb_endpoint_url"],
        region_name=credentials["aws_region"],
        aws_access_key_id=credentials["aws_access_key_id"],
        aws_secret_access_key=credentials["aws_secret_access_key"],
    )
    api_key, _ = ApiKeyStore(dynamodb, credentials["api_keys_table"]).create(
        PROJECT, ["feedback:read"], name="screenshots"
    )
    votes = 0
    for record in seeded_records(datetime.now(UTC)):
        store = FeedbackStore(
            dynamodb,
            credentials["feedback_table"],
            time_index_shards=TIME_INDEX_SHARDS,
            clock=record["moment"].timestamp,  # the record is written as if at that moment
        )
        submission = FeedbackSubmission.model_validate(record["fields"])
        store.submit(
            project=PROJECT,
            run_id=record["run_id"],
            user_id=record["user_id"],
            fields=submission.record_fields(),
            session_id=record["session_id"],
            agent=record["agent"],
        )
        votes += 1
    return api_key, votes


def wait_for_stats(endpoint: str, api_key: str, votes: int) -> None:
    """Until the stream consumers have counted every vote."""
    today = datetime.now(UTC).date()
    window = {"start": (today - timedelta(days=DAYS - 1)).isoformat(), "end": today.isoformat()}
    deadline = time.monotonic() + STATS_TIMEOUT_S
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{endpoint}/v1/stats",
            params={**window, "granularity": "total"},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=15,
        )
        response.raise_for_status()
        total = response.json()["total"]
        if total["positive"] + total["negative"] >= votes:
            return
        time.sleep(0.5)
    raise SystemExit(f"the stats did not count the {votes} demo votes within {STATS_TIMEOUT_S:.0f} s")


def capture_demo_chat(page: Page, target: Path) -> None:
    page.goto("/")
    # The widgets load their state once on screen: scroll each into view first.
    for widget in page.locator("feedback-widget").all():
        widget.scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(target), full_page=True)


def capture_dashboard(page: Page, api_key: str, target: Path) -> None:
    page.goto("/dashboard")
    page.fill("#api-key", api_key)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#report:not([hidden])")
    page.wait_for_selector("body:not(.loading)")
    page.wait_for_selector("#feedback-table tbody tr")
    page.screenshot(path=str(target), full_page=True)


def capture(endpoint: str, api_key: str) -> list[Path]:
    IMAGES.mkdir(parents=True, exist_ok=True)
    targets = [IMAGES / "demo-chat.png", IMAGES / "dashboard.png"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(base_url=endpoint, viewport=VIEWPORT)  # type: ignore[arg-type]
            page = context.new_page()
            capture_demo_chat(page, targets[0])
            capture_dashboard(page, api_key, targets[1])
        finally:
            browser.close()
    return targets


@contextlib.contextmanager
def stack_credentials(state_dir: Path | None) -> Iterator[dict[str, Any]]:
    """A running stack's credentials.json, or those of a stack started (and stopped) here."""
    if state_dir is not None:
        yield json.loads((state_dir / "credentials.json").read_text())
        return
    with tempfile.TemporaryDirectory() as directory, running(Path(directory), "stack", "--quiet") as stack:
        yield stack.credentials()
        stack.terminate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--state-dir", type=Path, help="use the running stack whose credentials.json is in this directory"
    )
    args = parser.parse_args(argv)
    with stack_credentials(args.state_dir) as credentials:
        api_key, votes = seed(credentials)
        wait_for_stats(credentials["endpoint"], api_key, votes)
        for target in capture(credentials["endpoint"], api_key):
            print(f"wrote {target.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

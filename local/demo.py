"""``GET /``: a fake chat (``clients/web/demo.html``) whose AI answers each carry the web widget with a
feedback token of their own, issued when the page is served through the real ``POST /v1/tokens`` route with
the demo project's API key. The page's one script is the widget (``/v1/widget.js``); its
Content-Security-Policy allows nothing else."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from local.gateway import HttpRequest, HttpResponse
from local.template import ROOT

log = logging.getLogger("local.demo")

USER_ID = "demo-user"


@dataclass(frozen=True)
class Answer:
    run_id: str
    question: str
    paragraphs: tuple[str, ...]
    widget_attributes: str = ""


CHAT = (
    Answer(
        "demo-run-1",
        "How do I keep my API key out of the browser?",
        (
            "Keep the key on your backend. For each AI answer, your backend asks the feedback service for "
            "a feedback token bound to that answer (and to the signed-in user), and hands only the token "
            "to the page.",
            "The token can rate that one answer and nothing else, and it expires on its own.",
        ),
    ),
    Answer(
        "demo-run-2",
        "Can a user change their mind after voting?",
        (
            "Yes. The same token lets them read, change or retract their feedback on that answer: click "
            "the other thumb to change the vote, or the same one again to take it back.",
            "Every change is published as an event carrying the previous value.",
        ),
        ' score score-min="1" score-max="5"',
    ),
    Answer(
        "demo-run-3",
        "How long is feedback kept?",
        ("Forever, unless you delete it by hand.",),
    ),
    Answer(
        "demo-run-4",
        "Does checking a token cost an AWS call?",
        (
            "No. Tokens are verified with a cached public key, so a forged or expired token is refused "
            "before any call to KMS or DynamoDB.",
        ),
    ),
)
"""The third answer is wrong on purpose (feedback is kept RetentionDays, 90 by default)."""

WEB = ROOT / "clients" / "web"
STYLE = (WEB / "demo.css").read_text()
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",  # the widget, from /v1/widget.js
        f"style-src 'sha256-{_STYLE_HASH}'",  # the page's one <style>; the widget's styles are its own
        "img-src 'self' data:",
        "connect-src 'self'",  # the widget's requests to this API
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


def widget_url() -> str:
    """The widget's versioned URL, as the meta function names it (cached for good by the browser)."""
    version = hashlib.sha256((ROOT / "functions/meta/web/feedback-widget.js").read_bytes()).hexdigest()[:16]
    return f"/v1/widget.js?v={version}"


def demo_page(
    issue: Callable[[HttpRequest], HttpResponse], api_key: str
) -> Callable[[HttpRequest], HttpResponse]:
    """The ``GET /`` handler; ``issue`` dispatches a request through the gateway."""

    def serve(request: HttpRequest) -> HttpResponse:
        tokens: list[str | None] = []
        for answer in CHAT:
            fields = {"run_id": answer.run_id, "user_id": USER_ID, "session_id": "demo-chat"}
            body = json.dumps(fields | {"agent": "demo-assistant"}).encode()
            # The page's request, become the product backend's: same client address and server.
            posted = replace(request, method="POST", raw_path="/v1/tokens", raw_query="", body=body)
            posted.headers = [
                ("host", request.header("host") or f"{request.server_host}:{request.server_port}"),
                ("authorization", f"Bearer {api_key}"),
                ("content-type", "application/json"),
                ("content-length", str(len(body))),
                ("user-agent", "local-demo-page"),
            ]
            response = issue(posted)
            if response.status == 201:
                tokens.append(str(response.json()["feedback_token"]))
            else:
                log.error("demo page: POST /v1/tokens answered %s %r", response.status, response.body[:200])
                tokens.append(None)
        headers = [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store")]
        headers += [("content-security-policy", PAGE_CSP), ("x-content-type-options", "nosniff")]
        return HttpResponse(200, headers, render(tokens).encode())

    return serve


def render(tokens: list[str | None]) -> str:
    items = []
    for index, (answer, token) in enumerate(zip(CHAT, tokens, strict=True), start=1):
        if token is None:
            controls = '<p class="error">No feedback token could be issued (see the server log).</p>'
        else:
            controls = (
                f'<feedback-widget token="{html.escape(token, quote=True)}" endpoint="/"'
                f"{answer.widget_attributes}></feedback-widget>"
            )
        items.append(
            _MESSAGE.format(
                n=index,
                run=html.escape(answer.run_id, quote=True),
                question=html.escape(answer.question),
                answer="\n    ".join(f"<p>{html.escape(paragraph)}</p>" for paragraph in answer.paragraphs),
                controls=controls,
            )
        )
    page = (WEB / "demo.html").read_text().replace("{style}", STYLE)
    page = page.replace("{widget}", html.escape(widget_url(), quote=True))
    return page.replace("{messages}", "\n".join(items))


_MESSAGE = """
<li class="turn">
  <p class="user"><span class="who">You</span>{question}</p>
  <article class="ai" id="answer-{n}" data-run-id="{run}" aria-labelledby="answer-{n}-label">
    <span class="who" id="answer-{n}-label">Assistant, answer {n}</span>
    {answer}
    {controls}
  </article>
</li>"""

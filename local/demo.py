"""``GET /``: a fake chat whose AI answers each carry a feedback token, with buttons that call the API.

The tokens are issued when the page is served, through the real route: ``POST /v1/tokens`` with the
demo project's API key goes through the gateway, the authorizer and the issue_token function, as a
product backend would call it. The page then talks to the API from the browser with the token only,
as the widget would: ``POST /v1/feedback``, ``GET`` and ``DELETE /v1/feedback/me``.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from local.gateway import HttpRequest, HttpResponse

log = logging.getLogger("local.demo")

USER_ID = "demo-user"
SESSION_ID = "demo-chat"
AGENT = "demo-assistant"


@dataclass(frozen=True)
class Answer:
    run_id: str
    question: str
    text: str


CHAT = (
    Answer(
        "demo-run-1",
        "How do I keep my API key out of the browser?",
        "Keep the key on your backend. For each AI answer, ask the service for a feedback token bound to "
        "that answer and hand only the token to the page.",
    ),
    Answer(
        "demo-run-2",
        "Can a user change their vote?",
        "Yes. The same token lets them read, change or retract their feedback on that answer.",
    ),
    Answer(
        "demo-run-3",
        "How long is feedback kept?",
        "Forever, unless you delete it by hand.",
    ),
)
"""The third answer is wrong on purpose (feedback is kept RetentionDays, 90 by default)."""


def demo_page(
    issue: Callable[[HttpRequest], HttpResponse], api_key: str
) -> Callable[[HttpRequest], HttpResponse]:
    """The ``GET /`` handler; ``issue`` dispatches a request through the gateway."""

    def serve(request: HttpRequest) -> HttpResponse:
        tokens: list[str | None] = []
        for answer in CHAT:
            body = json.dumps(
                {"run_id": answer.run_id, "user_id": USER_ID, "session_id": SESSION_ID, "agent": AGENT}
            ).encode()
            response = issue(
                HttpRequest(
                    method="POST",
                    raw_path="/v1/tokens",
                    headers=[
                        ("host", request.header("host") or f"{request.server_host}:{request.server_port}"),
                        ("authorization", f"Bearer {api_key}"),
                        ("content-type", "application/json"),
                        ("content-length", str(len(body))),
                        ("user-agent", "local-demo-page"),
                    ],
                    body=body,
                    source_ip=request.source_ip,
                    server_host=request.server_host,
                    server_port=request.server_port,
                )
            )
            if response.status == 201:
                tokens.append(str(response.json()["feedback_token"]))
            else:
                log.error("demo page: POST /v1/tokens answered %s %r", response.status, response.body[:200])
                tokens.append(None)
        page = render(tokens)
        return HttpResponse(
            200,
            [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store")],
            page.encode(),
        )

    return serve


def render(tokens: list[str | None]) -> str:
    items = []
    for index, (answer, token) in enumerate(zip(CHAT, tokens, strict=True), start=1):
        if token is None:
            controls = '<p class="error">No feedback token could be issued (see the server log).</p>'
        else:
            controls = _CONTROLS.format(n=index, token=html.escape(token, quote=True))
        items.append(
            _MESSAGE.format(
                n=index,
                question=html.escape(answer.question),
                answer=html.escape(answer.text),
                run=html.escape(answer.run_id),
                controls=controls,
            )
        )
    return _PAGE.replace("{messages}", "\n".join(items))


_MESSAGE = """
<li class="turn">
  <p class="user"><span class="who">You</span> {question}</p>
  <section class="ai" aria-labelledby="answer-{n}-label">
    <p><span class="who" id="answer-{n}-label">Assistant, answer {n}</span> {answer}</p>
    <p class="run">run <code>{run}</code></p>
    {controls}
  </section>
</li>"""

_CONTROLS = """<form class="feedback" data-token="{token}" aria-label="Feedback on answer {n}">
      <div class="votes">
        <button type="button" data-outcome="positive" aria-label="Good answer"
                aria-pressed="false"><span aria-hidden="true">👍</span> Good</button>
        <button type="button" data-outcome="negative" aria-label="Bad answer"
                aria-pressed="false"><span aria-hidden="true">👎</span> Bad</button>
      </div>
      <label for="comment-{n}">Comment (optional)</label>
      <textarea id="comment-{n}" name="comment" rows="2" maxlength="5000"></textarea>
      <div class="actions">
        <button type="button" data-action="comment">Send comment</button>
        <button type="button" data-action="show">Show my feedback</button>
        <button type="button" data-action="retract">Retract</button>
      </div>
      <output role="status" aria-live="polite"></output>
    </form>"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Feedback service - local demo</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
         color: #1b1b1b; }
  ol { list-style: none; padding: 0; }
  .turn { margin-bottom: 2rem; }
  .user { background: #eef2f7; padding: .6rem .9rem; border-radius: .6rem; }
  .ai { border: 1px solid #ccd3dc; padding: .6rem .9rem; border-radius: .6rem; }
  .who { font-weight: 600; margin-right: .4rem; }
  .run { color: #555; font-size: .85rem; margin: 0; }
  .votes button { font-size: 1.4rem; }
  button { margin: .2rem .3rem .2rem 0; padding: .3rem .7rem; cursor: pointer; }
  button[aria-pressed="true"] { outline: 3px solid #1f6feb; }
  button:focus-visible, textarea:focus-visible { outline: 3px solid #b35c00; outline-offset: 2px; }
  label { display: block; margin-top: .4rem; }
  textarea { width: 100%; box-sizing: border-box; }
  output { display: block; white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: .8rem;
           background: #f6f8fa; margin-top: .4rem; padding: .4rem; min-height: 1.2rem; }
  .error { color: #a40000; }
</style>
</head>
<body>
<header>
  <h1>Local demo: feedback on AI answers</h1>
  <p>Each answer below has its own feedback token, issued by this server with the demo project's API key.
  The buttons call the API from your browser with that token only:
  <code>POST /v1/feedback</code>, <code>GET</code> and <code>DELETE /v1/feedback/me</code>.
  API reference: <a href="/v1/docs">/v1/docs</a>.</p>
</header>
<main>
<h2>Chat</h2>
<ol>
{messages}
</ol>
</main>
<script>
"use strict";
async function call(form, method, path, body) {
  const out = form.querySelector("output");
  const headers = {"x-feedback-token": form.dataset.token};
  if (body !== undefined) headers["content-type"] = "application/json";
  out.textContent = method + " " + path + " ...";
  try {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const response = await fetch(path, {method, headers, body: payload});
    const text = await response.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
    out.textContent = method + " " + path + " -> " + response.status + (shown ? "\\n" + shown : "");
    let record = null;
    try { record = JSON.parse(text); } catch (e) { /* no body */ }
    const current = response.ok && record && record.outcome ? record.outcome : null;
    if (method === "DELETE" && response.status === 204) mark(form, null);
    else if (response.ok && record) mark(form, current);
    return response;
  } catch (error) {
    out.textContent = method + " " + path + " failed: " + error;
  }
}
function mark(form, outcome) {
  for (const button of form.querySelectorAll("[data-outcome]")) {
    button.setAttribute("aria-pressed", String(button.dataset.outcome === outcome));
  }
}
function comment(form) {
  const value = form.querySelector("textarea").value.trim();
  return value ? value : undefined;
}
for (const form of document.querySelectorAll("form.feedback")) {
  form.addEventListener("submit", (event) => event.preventDefault());
  for (const button of form.querySelectorAll("[data-outcome]")) {
    button.addEventListener("click", () =>
      call(form, "POST", "/v1/feedback", {outcome: button.dataset.outcome, comment: comment(form)}));
  }
  form.querySelector("[data-action=comment]").addEventListener("click", () => {
    const text = comment(form);
    if (text === undefined) { form.querySelector("output").textContent = "Write a comment first."; return; }
    call(form, "POST", "/v1/feedback", {comment: text});
  });
  form.querySelector("[data-action=show]")
    .addEventListener("click", () => call(form, "GET", "/v1/feedback/me"));
  form.querySelector("[data-action=retract]")
    .addEventListener("click", () => call(form, "DELETE", "/v1/feedback/me"));
}
</script>
</body>
</html>
"""

"""Execution environments of a local function: concurrent invocations each get one of their own."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from local.functions import LocalFunction

HANDLER = """
seen = []

def handler(event, context):
    seen.append(event)  # module state: one list per execution environment
    event["meeting"].wait(timeout=10)  # returns only once every invocation runs at the same time
    return {"seen": list(seen)}
"""


def local_function(name: str, tmp_path: Path, handler: str, *, max_environments: int = 8) -> LocalFunction:
    """A function of its own name: its environments' module names are its own too."""
    (tmp_path / "app.py").write_text(handler)
    return LocalFunction(
        name,
        name.lower(),
        "arn:aws:lambda:us-east-1:1:function:fn",
        tmp_path,
        "app.handler",
        max_environments=max_environments,
    )


def test_concurrent_invocations_run_in_environments_of_their_own(tmp_path: Path) -> None:
    function = local_function("Concurrent", tmp_path, HANDLER)
    function.load()
    meeting = threading.Barrier(3)
    results: list[dict[str, list[object]]] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(function.invoke({"n": n, "meeting": meeting})))
        for n in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert len(results) == 3  # none waited for another: the barrier of 3 was met
    assert all(len(result["seen"]) == 1 for result in results)  # no environment saw another's event
    assert function.invoke({"n": 3, "meeting": threading.Barrier(1)})["seen"][0]["n"] in {0, 1, 2}


def test_a_handler_that_fails_to_import_frees_its_slot(tmp_path: Path) -> None:
    function = local_function("Broken", tmp_path, "raise RuntimeError('broken')\n", max_environments=1)
    for _ in range(2):  # the second attempt imports again instead of waiting for a slot never freed
        with pytest.raises(RuntimeError, match="broken"):
            function.load()

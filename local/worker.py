"""The local stack's background loops (stream pollers, TTL sweeper, tap trimmer): one thread each."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("local.worker")


class PeriodicWorker:
    """Calls :meth:`tick` every ``interval`` seconds in a daemon thread, from :meth:`start` to :meth:`stop`
    (``immediately``: the first tick without waiting). A failing tick is logged and counted, and the loop
    goes on, as Lambda's pollers and DynamoDB's TTL keep going."""

    def __init__(self, name: str, interval: float, *, immediately: bool = False) -> None:
        self.name = name
        self.interval = interval
        self.immediately = immediately
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Starts the loop (not at all with an interval of 0 or less: ticks are then the caller's)."""
        if self.interval <= 0:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.0 if self.immediately else self.interval
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                self.tick()
            except Exception:
                self.failures += 1
                log.exception("%s failed; trying again in %g s", self.name, self.interval)

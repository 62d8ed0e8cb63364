"""The local stack's background loops (stream pollers, TTL sweeper, tap trimmer): one thread each."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("local.worker")


class PeriodicWorker:
    """Calls :meth:`tick` every ``interval`` seconds in a daemon thread, from :meth:`start` (not at all with
    an interval of 0: ticks are then the caller's) to :meth:`stop`. A failing tick is logged, and the loop
    goes on, as Lambda's pollers and DynamoDB's TTL keep going."""

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def tick(self) -> object:
        raise NotImplementedError

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("%s failed; trying again in %g s", self.name, self.interval)

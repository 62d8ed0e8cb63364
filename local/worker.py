"""The local stack's background loops (stream pollers, TTL sweeper, tap trimmer): one thread each."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("local.worker")


class PeriodicWorker(threading.Thread):
    """Calls :meth:`tick` every ``interval`` seconds in a daemon thread, from :meth:`start` (not at all with
    an interval of 0: ticks are then the caller's) to :meth:`stop`. A failing tick is logged, and the loop
    goes on, as Lambda's pollers and DynamoDB's TTL keep going."""

    def __init__(self, name: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def tick(self) -> object:
        raise NotImplementedError

    def start(self) -> None:
        if self.interval > 0:
            super().start()

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("%s failed; trying again in %g s", self.name, self.interval)

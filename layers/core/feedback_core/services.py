"""The process's service objects, built from settings once and cached (clients, keys and secrets).

Each kind lives in its own module, so a function imports only the factories its routes use:
``store_service`` (the Feedback table), ``token_service`` (token verifier and issuer), ``cursor_service``
(the cursor signing key, through Powertools' parameters utility), ``stats_service``, ``events_service``
and ``apikeys_service``.
"""

from __future__ import annotations

import sys

from feedback_core import aws
from feedback_core.observability import tracer
from feedback_core.settings import _settings

FACTORY_MODULES = (
    "feedback_core.store_service",
    "feedback_core.token_service",
    "feedback_core.cursor_service",
    "feedback_core.stats_service",
    "feedback_core.events_service",
    "feedback_core.apikeys_service",
)


def reset() -> None:
    """Forget every cached object (tests change settings and emulators between cases). A factory module
    this process never imported has nothing cached, and stays unimported."""
    _settings.cache_clear()
    aws.reset_clients()
    tracer.forget()
    for name in FACTORY_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            module.reset()

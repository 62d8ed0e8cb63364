"""DynamoDB Local for tests: a re-export of :mod:`local.ddblocal`, plus one shared instance per process.

The runner and the table creation live in ``local/ddblocal.py`` because the local stack uses them for
``--persist``; the tests keep importing them from here::

    with DynamoDBLocal() as ddb:                       # in memory, on a free port
        client = ddb.client()
        names = create_tables_from_template(client, prefix="t1")
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from local.ddblocal import (
    ACCESS_KEY_ID,
    DEFAULT_TEMPLATE,
    IGNORED_INDEX_PROPERTIES,
    IGNORED_TABLE_PROPERTIES,
    INSTALL_DIR,
    MAKE_FRAGMENT,
    NPM_PACKAGE,
    REGION,
    ROOT,
    SECRET_ACCESS_KEY,
    TABLE_TYPE,
    DynamoDBLocal,
    DynamoDBLocalError,
    DynamoDBLocalUnavailable,
    TemplateError,
    create_tables_from_template,
    delete_tables,
    ensure_installed,
    find_jar,
    find_java,
    free_port,
    install_command,
    load_template,
    npm_version,
    port_in_use,
    table_request,
    table_resources,
)

__all__ = [
    "ACCESS_KEY_ID",
    "DEFAULT_TEMPLATE",
    "IGNORED_INDEX_PROPERTIES",
    "IGNORED_TABLE_PROPERTIES",
    "INSTALL_DIR",
    "MAKE_FRAGMENT",
    "NPM_PACKAGE",
    "REGION",
    "ROOT",
    "SECRET_ACCESS_KEY",
    "TABLE_TYPE",
    "DynamoDBLocal",
    "DynamoDBLocalError",
    "DynamoDBLocalUnavailable",
    "TemplateError",
    "create_tables_from_template",
    "delete_tables",
    "ensure_installed",
    "find_jar",
    "find_java",
    "free_port",
    "install_command",
    "load_template",
    "npm_version",
    "port_in_use",
    "shared_instance",
    "table_request",
    "table_resources",
]

_shared: DynamoDBLocal | None = None
_shared_users = 0
_shared_lock = threading.Lock()


@contextlib.contextmanager
def shared_instance(jar: Path | None = None, java: str | None = None) -> Iterator[DynamoDBLocal]:
    """One in-memory DynamoDB Local per process, however many fixtures ask for it.

    A conftest that imports the ``ddb_local`` fixture defines it again, and pytest sets up each
    definition once: both then get this same process, stopped when the last one lets go.
    """
    global _shared, _shared_users  # noqa: PLW0603
    with _shared_lock:
        if _shared is None or not _shared.running:
            _shared = DynamoDBLocal(jar=jar, java=java).start()
        instance = _shared
        _shared_users += 1
    try:
        yield instance
    finally:
        with _shared_lock:
            _shared_users -= 1
            if _shared_users == 0 and _shared is not None:
                _shared.stop()
                _shared = None

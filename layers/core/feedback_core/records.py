"""The Feedback table's items: key schema, bookkeeping attributes, and the item a submit writes.

Key schema (see docs/ARCHITECTURE.md):
- table: pk = "<project>#<run_id>", sk = "<user_id>" — one record per run and user;
- time-index: time_pk = "<project>#<shard>", time_sk = "<created_at>#<feedback_id>";
- session-index (sparse): session_pk = "<project>#<session_id>", time_sk;
- user-index (sparse, named users only): user_pk = "<project>#<user_id>", time_sk.
Every index sorts by time_sk, which is unique, so one kind of cursor serves every listing.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from feedback_core.clock import iso_timestamp
from feedback_core.dynamo import Item, from_dynamo, to_dynamo
from feedback_core.fields import ANONYMOUS
from feedback_core.models import FeedbackRecord

TIME_INDEX = "time-index"
SESSION_INDEX = "session-index"
USER_INDEX = "user-index"
REMOVAL_ACTOR = "removal_actor"
"""Set just before an admin delete or an erasure, so the stream's REMOVE says who removed the record."""
OWNER_BOUND = "owner_bound"
"""True once a token bound to the record's user has written it: from then on tokens with no user bound are
refused (403). Part of the write and delete conditions, so the check and the write are one atomic step."""
LAST_WRITE = "last_write"
"""The id of the submit that last wrote the item. When a write's answer is lost (a timeout), the AWS SDK
sends the same request again: its condition then fails on this id, and the store answers what the first
attempt did instead of applying the write twice (a second version, a spurious change event, or a 412 for
an If-Match write that succeeded)."""
INTERNAL_ATTRIBUTES = (
    *("pk", "sk", "time_pk", "time_sk", "session_pk", "user_pk"),
    *(REMOVAL_ACTOR, OWNER_BOUND, LAST_WRITE),
)
"""Stored for keys, indexes and bookkeeping; never part of a record in a response, an event or the stats."""
DEFAULTS: dict[str, Any] = {"weight": 1.0, "source": "web"}
SECONDS_PER_DAY = 86400

RemovalActor = Literal["admin", "erasure"]


def record_from_item(item: Item) -> FeedbackRecord:
    return FeedbackRecord.model_validate({k: v for k, v in item.items() if k not in INTERNAL_ATTRIBUTES})


def table_key(project: str, run_id: str, user_id: str) -> Item:
    return {"pk": f"{project}#{run_id}", "sk": user_id}


def time_shard(run_id: str, shards: int) -> int:
    """Spreads the time index over `shards` partitions by run, stable across processes."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big") % shards


@dataclass
class RecordWrite:
    """One submit as data: the update expression and the resulting item both derive from it."""

    sets: Item = field(default_factory=dict)
    defaults: Item = field(default_factory=dict)
    """Set only when absent (if_not_exists)."""
    removes: set[str] = field(default_factory=set)

    def expression(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {":one": 1, ":zero": 0}
        clauses = []
        for index, (name, value) in enumerate(sorted(self.sets.items())):
            names[f"#s{index}"] = name
            values[f":s{index}"] = value
            clauses.append(f"#s{index} = :s{index}")
        for index, (name, value) in enumerate(sorted(self.defaults.items())):
            names[f"#d{index}"] = name
            values[f":d{index}"] = value
            clauses.append(f"#d{index} = if_not_exists(#d{index}, :d{index})")
        names["#version"] = "version"
        clauses.append("#version = if_not_exists(#version, :zero) + :one")
        expression = "SET " + ", ".join(clauses)
        if self.removes:
            for index, name in enumerate(sorted(self.removes)):
                names[f"#r{index}"] = name
            expression += " REMOVE " + ", ".join(f"#r{index}" for index in range(len(self.removes)))
        return expression, names, values

    def apply(self, old: Item | None) -> Item:
        """The item as DynamoDB holds it after this write, numbers as a read returns them
        (an integral float such as ``2.0`` or ``5.7e16`` reads back as an int)."""
        item = dict(old or {})
        for name in self.removes:
            item.pop(name, None)
        for name, value in self.defaults.items():
            item.setdefault(name, value)
        item.update(from_dynamo(to_dynamo(self.sets)))
        item["version"] = int((old or {}).get("version", 0)) + 1
        return item


def submission_write(
    *,
    project: str,
    run_id: str,
    user_id: str,
    fields: Item,
    session_id: str | None,
    agent: str | None,
    context: dict[str, Any] | None,
    now: float,
    time_index_shards: int,
    retention_days: int,
    unchanged: frozenset[str] = frozenset(),
) -> RecordWrite:
    """What a submit sets, defaults and removes: the caller's fields, the index keys and the expiry.

    `unchanged`: which of session_id, agent and context the write leaves as stored (an API-key write that
    omits them); a token always states all three."""
    timestamp = iso_timestamp(now)
    feedback_id = str(uuid.uuid4())
    write = RecordWrite(
        sets={
            "project": project,
            "run_id": run_id,
            "user_id": user_id,
            "updated_at": timestamp,
            "time_pk": f"{project}#{time_shard(run_id, time_index_shards)}",
        },
        defaults={
            "created_at": timestamp,
            "feedback_id": feedback_id,
            "time_sk": f"{timestamp}#{feedback_id}",
        },
    )
    optional: Item = {
        "session_id": session_id,
        "agent": agent,
        "context": context or None,
        "session_pk": f"{project}#{session_id}" if session_id else None,
        "user_pk": f"{project}#{user_id}" if user_id != ANONYMOUS else None,
        "expires_at": int(now) + retention_days * SECONDS_PER_DAY if retention_days else None,
    }
    kept = unchanged | ({"session_pk"} if "session_id" in unchanged else set())
    for name, value in optional.items():
        if name in kept:
            continue
        if value is None:
            write.removes.add(name)
        else:
            write.sets[name] = value
    for name, value in fields.items():
        if value is not None:
            write.sets[name] = value
        elif name in DEFAULTS:
            write.sets[name] = DEFAULTS[name]
        else:
            write.removes.add(name)
    for name, value in DEFAULTS.items():
        if name not in fields:
            write.defaults[name] = value
    return write

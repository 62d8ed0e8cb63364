"""The local stack's ``--persist``: what the deploy and the pollers restore from, and save to, the
:class:`~local.state.PersistentState` of the data directory."""

from __future__ import annotations

import logging
from collections.abc import Callable

from local.cloud import Clients
from local.emulation import CreatedHook, Physical
from local.state import PersistentState, export_kms_key, restore_kms_key

log = logging.getLogger("local.persist")


def restoring(state: PersistentState) -> CreatedHook:
    """A deploy hook: KMS keys come back with their saved id and material, secrets with their value."""

    def on_created(clients: Clients, logical_id: str, kind: str, physical: Physical) -> Physical | None:
        if kind == "AWS::KMS::Key":
            arn = physical.attributes["Arn"]
            saved = state.kms_keys.get(logical_id)
            if saved is not None:
                try:
                    arn = restore_kms_key(arn, saved)
                    log.info("%s restored as %s", logical_id, saved.key_id)
                except (ValueError, KeyError) as exc:
                    log.warning("%s not restored (%s): tokens issued before do not verify", logical_id, exc)
            key = export_kms_key(arn)
            state.kms_keys[logical_id] = key
            return Physical(ref=key.key_id, attributes={"Arn": arn, "KeyId": key.key_id})
        if kind == "AWS::SecretsManager::Secret":
            saved_value = state.secrets.get(logical_id)
            if saved_value is not None:
                clients.secretsmanager.put_secret_value(SecretId=physical.ref, SecretString=saved_value)
            else:
                value = clients.secretsmanager.get_secret_value(SecretId=physical.ref)["SecretString"]
                state.secrets[logical_id] = value
        return None

    return on_created


def checkpoint_saver(state: PersistentState, stream_arn: str) -> Callable[[str, str, str], None]:
    """A poller's checkpoints, saved as they come (a restart resumes after the last one)."""

    def saved(mapping: str, shard_id: str, sequence: str) -> None:
        state.record_checkpoint(mapping, stream_arn, shard_id, sequence)
        state.save()

    return saved

"""What ``--persist DIR`` keeps besides the tables in ``DIR/local-state.json`` (docs/LOCAL.md). A KMS key
comes back under its old id through moto's in-process backend: moto has no API to import an asymmetric
private key or choose a key id."""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization

from local.emulation import CreatedHook, Physical

if TYPE_CHECKING:
    from local.cloud import Clients

log = logging.getLogger("local.state")

_VERSION = 1


def write_private_json(path: Path, document: dict[str, Any]) -> None:
    """Readable by the owner only (it holds keys), and replaced whole (a reader never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    temporary.replace(path)


@dataclass
class SavedKey:
    key_id: str
    key_spec: str
    key_material: str  # base64 of moto's symmetric key material
    private_key_pem: str | None = None


@dataclass
class PersistentState:
    """The contents of ``local-state.json``; :meth:`save` writes it atomically."""

    path: Path
    stack_name: str = ""
    kms_keys: dict[str, SavedKey] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)  # project -> API key secret
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    """mapping logical id -> {"stream_arn": ..., "shards": {shard id: sequence number}}."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, directory: Path, stack_name: str) -> PersistentState:
        path = directory / "local-state.json"
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        if (data.get("version"), data.get("stack_name")) == (_VERSION, stack_name):
            keys = {name: SavedKey(**value) for name, value in data["kms_keys"].items()}
            return cls(path, stack_name, keys, data["secrets"], data["api_keys"], data["checkpoints"])
        if data:
            log.warning("%s is from another version or stack: starting over (tables are kept)", path)
        return cls(path, stack_name)

    def save(self) -> None:
        names = ("stack_name", "secrets", "api_keys", "checkpoints")
        with self._lock:
            kms_keys = {name: key.__dict__ for name, key in self.kms_keys.items()}
            data = {name: getattr(self, name) for name in names} | {"version": _VERSION, "kms_keys": kms_keys}
            write_private_json(self.path, data)

    def record_checkpoint(self, stream_arn: str, mapping: str, shard_id: str, sequence: str) -> None:
        """A poller's progress, saved as it comes (a restart resumes after it)."""
        with self._lock:
            entry = self.checkpoints.get(mapping)
            if entry is None or entry["stream_arn"] != stream_arn:
                entry = self.checkpoints[mapping] = {"stream_arn": stream_arn, "shards": {}}
            entry["shards"][shard_id] = sequence
        self.save()

    def checkpoints_for(self, mapping: str, stream_arn: str) -> dict[str, str]:
        entry = self.checkpoints.get(mapping, {})
        return dict(entry["shards"]) if entry.get("stream_arn") == stream_arn else {}


def _kms_backend(arn: str) -> tuple[Any, str]:
    """moto's in-process KMS backend of a key ARN, and the key id."""
    from moto.kms.models import kms_backends  # noqa: PLC0415 (only with moto)

    _, _, _, region, account, resource = arn.split(":", 5)
    return kms_backends[account][region], resource.removeprefix("key/")


def export_kms_key(arn: str) -> SavedKey:
    """The id and key material of a key in moto (this process)."""
    backend, key_id = _kms_backend(arn)
    key = backend.keys[key_id]
    private = getattr(getattr(key, "private_key", None), "private_key", None)
    pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    pem = private and private.private_bytes(*pkcs8).decode()
    return SavedKey(key_id, str(key.key_spec), base64.b64encode(key.key_material).decode(), pem)


def restore_kms_key(arn: str, saved: SavedKey) -> str:
    """Gives the key just created in moto (``arn``) the saved id and key material; returns its new ARN."""
    backend, new_id = _kms_backend(arn)
    key = backend.keys[new_id]
    if str(key.key_spec) != saved.key_spec:
        raise ValueError(f"saved key {saved.key_id} is {saved.key_spec}, the template's is {key.key_spec}")
    key.key_material = base64.b64decode(saved.key_material)
    if saved.private_key_pem is not None and getattr(key, "private_key", None) is not None:
        key.private_key.private_key = serialization.load_pem_private_key(saved.private_key_pem.encode(), None)
    del backend.keys[new_id]
    key.id = saved.key_id
    key.arn = arn.replace(new_id, saved.key_id)
    backend.keys[saved.key_id] = key
    return str(key.arn)


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
            secrets = clients.secretsmanager
            if logical_id in state.secrets:
                secrets.put_secret_value(SecretId=physical.ref, SecretString=state.secrets[logical_id])
            else:
                state.secrets[logical_id] = secrets.get_secret_value(SecretId=physical.ref)["SecretString"]
        return None

    return on_created

"""`feedback-operator keys create|revoke` against a stack deployed from template.yaml (in moto)."""

from __future__ import annotations

import json

import boto3
import pytest

from feedback_core.apikeys import ApiKeyStore, hash_key
from feedback_operator.cli import main
from local.cloud import Stack


def test_create_finds_the_table_from_the_stack_and_stores_only_the_hash(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["keys", "create", "--stack", "feedback-it", "--project", "acme", "--scopes", "feedback:read"])
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown["api_key"].startswith("fbk_")
    assert shown["scopes"] == ["feedback:read"]
    table = stack.outputs["ApiKeysTableName"]
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    assert [item["key_hash"]["S"] for item in items] == [hash_key(shown["api_key"])]
    assert shown["api_key"] not in json.dumps(items)
    store = ApiKeyStore(boto3.client("dynamodb"), table)
    principal = store.authorize(f"Bearer {shown['api_key']}")
    assert principal is not None
    assert (principal.project, principal.scopes) == ("acme", frozenset({"feedback:read"}))

    assert main(["keys", "revoke", "--table", table, shown["key_hash"]]) == 0
    assert store.authorize(f"Bearer {shown['api_key']}") is None


def test_bad_project_name_and_unknown_stack(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--stack", "feedback-it", "--project", "Not Valid"]) == 2
    assert "project must be" in capsys.readouterr().err
    assert main(["keys", "create", "--stack", "nope", "--project", "acme"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["keys", "revoke", "--stack", "feedback-it", "0" * 64]) == 1
    assert "no such API key" in capsys.readouterr().err

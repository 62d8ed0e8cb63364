"""The DynamoDB Local harness: tables match the template, and DynamoDB semantics are real."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from local.ddblocal import DynamoDBLocal, DynamoDBLocalError
from local.tables import create_tables_from_template, table_resources
from local.template import TemplateError, load_template

if TYPE_CHECKING:
    from tests.ddblocal.conftest import Runtime, Tables

# The contract's indexes (DESIGN.md, Storage): all project every attribute.
EXPECTED_GSIS = {
    "time-index": [("time_pk", "HASH"), ("time_sk", "RANGE")],
    "session-index": [("session_pk", "HASH"), ("time_sk", "RANGE")],
    "user-index": [("user_pk", "HASH"), ("time_sk", "RANGE")],
}


def key_schema(schema: list[Any]) -> list[tuple[str, str]]:
    return [(str(key["AttributeName"]), str(key["KeyType"])) for key in schema]


def s(value: str) -> dict[str, str]:
    return {"S": value}


def test_every_template_table_is_created_with_its_keys_and_indexes(ddb_tables: Tables) -> None:
    client, names = ddb_tables
    resources = table_resources(load_template())
    assert {"FeedbackTable", "ApiKeysTable", "StatsTable"} <= set(names)
    assert set(names) == set(resources)
    for logical_id, name in names.items():
        assert name.endswith(f"-{logical_id}")
        table = client.describe_table(TableName=name)["Table"]
        properties = resources[logical_id]["Properties"]
        assert table["TableStatus"] == "ACTIVE"
        assert key_schema(table["KeySchema"]) == key_schema(properties["KeySchema"])
        billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
        assert billing == properties.get("BillingMode", "PROVISIONED")
        described = {index["IndexName"]: index for index in table.get("GlobalSecondaryIndexes", [])}
        declared = {str(index["IndexName"]): index for index in properties.get("GlobalSecondaryIndexes", [])}
        assert set(described) == set(declared)
        for index_name, index in declared.items():
            assert key_schema(described[index_name]["KeySchema"]) == key_schema(index["KeySchema"])
            assert (
                described[index_name]["Projection"]["ProjectionType"] == index["Projection"]["ProjectionType"]
            )
            assert described[index_name]["IndexStatus"] == "ACTIVE"

    feedback = client.describe_table(TableName=names["FeedbackTable"])["Table"]
    described = {index["IndexName"]: index for index in feedback["GlobalSecondaryIndexes"]}
    for index_name, schema in EXPECTED_GSIS.items():
        assert key_schema(described[index_name]["KeySchema"]) == schema
        assert described[index_name]["Projection"]["ProjectionType"] == "KEYS_ONLY"
    api_keys = client.describe_table(TableName=names["ApiKeysTable"])["Table"]
    assert key_schema(api_keys["KeySchema"]) == [("key_hash", "HASH")]
    stats = client.describe_table(TableName=names["StatsTable"])["Table"]
    assert key_schema(stats["KeySchema"]) == [("pk", "HASH"), ("sk", "RANGE")]


def test_feedback_table_has_ttl_on_expires_at(ddb_tables: Tables) -> None:
    client, names = ddb_tables
    ttl = client.describe_time_to_live(TableName=names["FeedbackTable"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_feedback_stream_carries_new_and_old_images(ddb_tables: Tables, ddb_local: DynamoDBLocal) -> None:
    client, names = ddb_tables
    table = client.describe_table(TableName=names["FeedbackTable"])["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    key = {"pk": s("demo#run-1"), "sk": s("alice")}
    client.put_item(TableName=names["FeedbackTable"], Item={**key, "outcome": s("positive")})
    client.update_item(
        TableName=names["FeedbackTable"],
        Key=key,
        UpdateExpression="SET outcome = :o",
        ExpressionAttributeValues={":o": s("negative")},
    )
    client.delete_item(TableName=names["FeedbackTable"], Key=key)

    streams = ddb_local.streams_client()
    arn = table["LatestStreamArn"]
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    records: list[Any] = []
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += streams.get_records(ShardIterator=iterator)["Records"]
    assert [record["eventName"] for record in records] == ["INSERT", "MODIFY", "REMOVE"]
    insert, modify, remove = (record["dynamodb"] for record in records)
    assert insert["NewImage"]["outcome"] == s("positive")
    assert "OldImage" not in insert
    assert modify["OldImage"]["outcome"] == s("positive")
    assert modify["NewImage"]["outcome"] == s("negative")
    assert remove["OldImage"]["outcome"] == s("negative")
    assert "NewImage" not in remove
    assert len({record["eventID"] for record in records}) == 3
    sequence = [int(record["dynamodb"]["SequenceNumber"]) for record in records]
    assert sequence == sorted(sequence)


def test_failed_condition_check_cancels_the_whole_transaction(ddb_tables: Tables) -> None:
    client, names = ddb_tables
    feedback, stats = names["FeedbackTable"], names["StatsTable"]
    client.put_item(TableName=feedback, Item={"pk": s("demo#run-1"), "sk": s("alice"), "version": {"N": "3"}})

    with pytest.raises(client.exceptions.TransactionCanceledException) as raised:
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": stats,
                        "Item": {"pk": s("demo"), "sk": s("2026-01-01")},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": feedback,
                        "Key": {"pk": s("demo#run-1"), "sk": s("alice")},
                        "ConditionExpression": "version < :max",
                        "ExpressionAttributeValues": {":max": {"N": "3"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
        )

    reasons = raised.value.response["CancellationReasons"]
    assert [reason["Code"] for reason in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["version"] == {"N": "3"}
    assert "ConditionalCheckFailed" in raised.value.response["Error"]["Message"]
    assert "Item" not in client.get_item(TableName=stats, Key={"pk": s("demo"), "sk": s("2026-01-01")})


def test_conditional_update_returns_the_old_item_on_failure(ddb_tables: Tables) -> None:
    client, names = ddb_tables
    key = {"pk": s("demo#run-1"), "sk": s("alice")}
    client.put_item(TableName=names["FeedbackTable"], Item={**key, "version": {"N": "100"}})
    with pytest.raises(client.exceptions.ConditionalCheckFailedException) as raised:
        client.update_item(
            TableName=names["FeedbackTable"],
            Key=key,
            UpdateExpression="ADD version :one",
            ConditionExpression="attribute_not_exists(version) OR version < :max",
            ExpressionAttributeValues={":one": {"N": "1"}, ":max": {"N": "100"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert raised.value.response["Item"]["version"] == {"N": "100"}


def test_time_index_query_returns_newest_first_and_sparse_indexes_skip_items(ddb_tables: Tables) -> None:
    client, names = ddb_tables
    feedback = names["FeedbackTable"]
    stamps = [f"2026-01-0{day}T10:00:00.000Z" for day in range(1, 8)]
    shuffled = stamps[:]
    random.Random(7).shuffle(shuffled)
    for number, created_at in enumerate(shuffled):
        item = {
            "pk": s(f"demo#run-{number}"),
            "sk": s("anonymous"),
            "created_at": s(created_at),
            "time_pk": s("demo#0"),
            "time_sk": s(f"{created_at}#{number}"),
        }
        if number % 2 == 0:
            item["session_pk"] = s("demo#session-1")
        client.put_item(TableName=feedback, Item=item)
    client.put_item(  # another project's item in the same table never shows up
        TableName=feedback,
        Item={
            "pk": s("other#run"),
            "sk": s("anonymous"),
            "time_pk": s("other#0"),
            "time_sk": s("2026-01-09"),
        },
    )

    page = client.query(
        TableName=feedback,
        IndexName="time-index",
        KeyConditionExpression="time_pk = :p",
        ExpressionAttributeValues={":p": s("demo#0")},
        ScanIndexForward=False,
        Limit=4,
    )
    # The index holds keys only: its sort key starts with created_at.
    assert [item["time_sk"]["S"][:24] for item in page["Items"]] == stamps[::-1][:4]
    assert "LastEvaluatedKey" in page
    rest = client.query(
        TableName=feedback,
        IndexName="time-index",
        KeyConditionExpression="time_pk = :p",
        ExpressionAttributeValues={":p": s("demo#0")},
        ScanIndexForward=False,
        ExclusiveStartKey=page["LastEvaluatedKey"],
    )
    assert [item["time_sk"]["S"][:24] for item in rest["Items"]] == stamps[::-1][4:]

    session = client.query(
        TableName=feedback,
        IndexName="session-index",
        KeyConditionExpression="session_pk = :p",
        ExpressionAttributeValues={":p": s("demo#session-1")},
        ScanIndexForward=False,
    )
    assert len(session["Items"]) == 4
    assert client.scan(TableName=feedback, IndexName="user-index")["Count"] == 0


def test_tables_of_different_prefixes_are_isolated(ddb_local: DynamoDBLocal) -> None:
    client = ddb_local.client()
    first = create_tables_from_template(client, prefix="iso-a")
    second = create_tables_from_template(client, prefix="iso-b")
    try:
        assert set(first.values()).isdisjoint(second.values())
        client.put_item(TableName=first["StatsTable"], Item={"pk": s("p"), "sk": s("s")})
        assert client.scan(TableName=second["StatsTable"])["Count"] == 0
        # exist_ok: re-running against existing tables (a persistent database) keeps them and their data.
        again = create_tables_from_template(client, prefix="iso-a", exist_ok=True)
        assert again == first
        assert client.scan(TableName=first["StatsTable"])["Count"] == 1
        with pytest.raises(ClientError, match="ResourceInUseException"):
            create_tables_from_template(client, prefix="iso-a")
    finally:
        for name in [*first.values(), *second.values()]:
            client.delete_table(TableName=name)


def test_data_persists_across_restart_with_db_path(ddblocal_runtime: Runtime, tmp_path: Path) -> None:
    db_path = tmp_path / "db"
    item = {"pk": s("demo#run-1"), "sk": s("alice"), "outcome": s("positive")}
    with DynamoDBLocal(db_path, jar=ddblocal_runtime.jar, java=ddblocal_runtime.java) as first:
        client = first.client()
        names = create_tables_from_template(client, prefix="stack")
        client.put_item(TableName=names["FeedbackTable"], Item=item)
        process = first.process
        assert process is not None
    assert process.poll() is not None, "DynamoDB Local still running after exit"
    assert any(db_path.iterdir()), "no database file written"

    with DynamoDBLocal(db_path, jar=ddblocal_runtime.jar, java=ddblocal_runtime.java) as second:
        client = second.client()
        assert set(names.values()) <= set(client.list_tables()["TableNames"])
        stored = client.get_item(TableName=names["FeedbackTable"], Key={"pk": item["pk"], "sk": item["sk"]})
        assert stored["Item"] == item
        ttl = client.describe_time_to_live(TableName=names["FeedbackTable"])["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] == "ENABLED"
        assert create_tables_from_template(client, prefix="stack", exist_ok=True) == names


def test_startup_failure_reports_the_process_output(ddblocal_runtime: Runtime, tmp_path: Path) -> None:
    bogus = tmp_path / "DynamoDBLocal.jar"
    bogus.write_bytes(b"not a jar")
    started = time.monotonic()
    with pytest.raises(DynamoDBLocalError, match=r"exited with code .*(?s:.*)Invalid or corrupt jarfile"):
        DynamoDBLocal(jar=bogus, java=ddblocal_runtime.java, startup_timeout=30).start()
    assert time.monotonic() - started < 30


def test_port_in_use_is_reported(ddb_local: DynamoDBLocal, ddblocal_runtime: Runtime) -> None:
    clash = DynamoDBLocal(port=ddb_local.port, jar=ddblocal_runtime.jar, java=ddblocal_runtime.java)
    with pytest.raises(DynamoDBLocalError, match="already in use"):
        clash.start()
    assert not clash.running
    assert ddb_local.client().list_tables()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_template_intrinsics_and_unknown_properties(ddb_local: DynamoDBLocal, tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        """
Parameters:
  Retention: {Type: Number, Default: 90}
  Mode: {Type: String, Default: provisioned}
Conditions:
  Expires: !Not [!Equals [!Ref Retention, 0]]
  Provisioned: !Equals [!Ref Mode, provisioned]
Resources:
  Key:
    Type: AWS::KMS::Key
  Things:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-things"
      BillingMode: !If [Provisioned, PROVISIONED, PAY_PER_REQUEST]
      ProvisionedThroughput: !If
        - Provisioned
        - {ReadCapacityUnits: "2", WriteCapacityUnits: 3}
        - !Ref AWS::NoValue
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      TimeToLiveSpecification: {AttributeName: gone_at, Enabled: !If [Expires, true, false]}
      SSESpecification: {SSEEnabled: true, KMSMasterKeyId: !GetAtt Key.Arn}
""",
        encoding="utf-8",
    )
    client = ddb_local.client()
    names = create_tables_from_template(client, template, prefix="intr")
    table = client.describe_table(TableName=names["Things"])["Table"]
    assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 3
    assert client.describe_time_to_live(TableName=names["Things"])["TimeToLiveDescription"][
        "TimeToLiveStatus"
    ] == ("ENABLED")

    names = create_tables_from_template(
        client, template, prefix="intr2", parameters={"Retention": 0, "Mode": "on-demand"}
    )
    table = client.describe_table(TableName=names["Things"])["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert client.describe_time_to_live(TableName=names["Things"])["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "DISABLED"
    }

    template.write_text(
        template.read_text(encoding="utf-8") + "      SomeNewProperty: true\n", encoding="utf-8"
    )
    with pytest.raises(TemplateError, match="SomeNewProperty"):
        create_tables_from_template(client, template, prefix="intr3")

"""The strict layer refuses what AWS refuses, with AWS's error codes, and lets the rest through."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.support.aws_limits import (
    DYNAMODB_MAX_ITEM_BYTES,
    EVENTS_MAX_REQUEST_BYTES,
    KMS_MAX_RAW_MESSAGE,
    SNS_MAX_PAYLOAD_BYTES,
    StrictAws,
    dynamodb_item_size,
    event_entry_size,
    transaction_conflict,
)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def error_code(call: ClientError) -> str:
    return str(call.response["Error"]["Code"])


def test_kms_raw_message_limit(aws: None, strict_aws: StrictAws) -> None:
    kms = boto3.client("kms")
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    sign = {"KeyId": key, "SigningAlgorithm": "ECDSA_SHA_256", "MessageType": "RAW"}
    assert kms.sign(Message=b"x" * KMS_MAX_RAW_MESSAGE, **sign)["Signature"]
    with pytest.raises(ClientError) as refused:
        kms.sign(Message=b"x" * (KMS_MAX_RAW_MESSAGE + 1), **sign)
    assert error_code(refused.value) == "ValidationException"


def test_put_events_limits(aws: None) -> None:
    events = boto3.client("events")
    entry = {"Source": "feedback.service", "DetailType": "Feedback Submitted", "Detail": "{}"}
    with pytest.raises(ClientError) as too_many:
        events.put_events(Entries=[entry] * 11)
    assert error_code(too_many.value) == "ValidationException"
    overhead = event_entry_size(entry | {"Detail": ""})
    detail = json.dumps({"k": "v" * (EVENTS_MAX_REQUEST_BYTES // 2 - overhead - 10)})
    fits = entry | {"Detail": detail}
    assert events.put_events(Entries=[fits])["FailedEntryCount"] == 0
    with pytest.raises(ClientError) as too_large:
        events.put_events(Entries=[fits, fits, entry])
    assert error_code(too_large.value) == "ValidationException"


def test_sns_batch_limits(aws: None) -> None:
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="limits")["TopicArn"]
    entries = [{"Id": str(index), "Message": "m"} for index in range(11)]
    with pytest.raises(ClientError) as too_many:
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)
    assert error_code(too_many.value) == "TooManyEntriesInBatchRequest"
    half = "x" * (SNS_MAX_PAYLOAD_BYTES // 2)
    with pytest.raises(ClientError) as too_long:
        sns.publish_batch(
            TopicArn=topic,
            PublishBatchRequestEntries=[{"Id": "a", "Message": half}, {"Id": "b", "Message": half + "x"}],
        )
    assert error_code(too_long.value) == "BatchRequestTooLong"


def test_dynamodb_item_size_and_number_precision(aws: None, strict_aws: StrictAws) -> None:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="limits",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    big = {"pk": {"S": "a"}, "v": {"S": "x" * (DYNAMODB_MAX_ITEM_BYTES - 4)}}
    assert dynamodb_item_size(big) == DYNAMODB_MAX_ITEM_BYTES
    with pytest.raises(ClientError) as too_big:
        dynamodb.put_item(TableName="limits", Item=big | {"w": {"BOOL": True}})
    assert error_code(too_big.value) == "ValidationException"
    assert strict_aws.refusals == [("dynamodb", "PutItem", "ValidationException")]
    dynamodb.put_item(TableName="limits", Item={"pk": {"S": "n"}, "n": {"N": "1" * 38 + "0" * 10}})
    strict_aws.refusals.clear()
    with pytest.raises(ClientError) as too_precise:
        dynamodb.put_item(TableName="limits", Item={"pk": {"S": "n"}, "n": {"N": "1" * 39}})
    assert error_code(too_precise.value) == "ValidationException"
    assert strict_aws.refusals == [("dynamodb", "PutItem", "ValidationException")]
    with pytest.raises(ClientError) as in_update:
        dynamodb.update_item(
            TableName="limits",
            Key={"pk": {"S": "n"}},
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"M": {"deep": {"L": [{"N": "0." + "1" * 39}]}}}},
        )
    assert error_code(in_update.value) == "ValidationException"


def test_transactions_are_capped_and_conflicts_injectable(aws: None, strict_aws: StrictAws) -> None:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="tx",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    puts = [{"Put": {"TableName": "tx", "Item": {"pk": {"S": str(index)}}}} for index in range(101)]
    with pytest.raises(ClientError) as too_many:
        dynamodb.transact_write_items(TransactItems=puts)
    assert error_code(too_many.value) == "ValidationException"
    strict_aws.inject(
        "dynamodb", "TransactWriteItems", lambda params: transaction_conflict(len(params["TransactItems"]))
    )
    with pytest.raises(ClientError) as conflict:
        dynamodb.transact_write_items(TransactItems=puts[:2])
    assert error_code(conflict.value) == "TransactionCanceledException"
    assert conflict.value.response["CancellationReasons"][0]["Code"] == "TransactionConflict"
    dynamodb.transact_write_items(TransactItems=puts[:2])  # the fault was injected once
    assert dynamodb.get_item(TableName="tx", Key={"pk": {"S": "1"}})["Item"]

"""The DynamoDB value codec of feedback_core.dynamo gives what boto3's TypeSerializer/TypeDeserializer give
(the reference it replaces, so that functions need not import boto3), for every kind of value."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from feedback_core.dynamo import attribute_value, deserialize, plain_value, serialize

numbers = st.one_of(
    st.integers(min_value=-(10**37), max_value=10**37),
    st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20),
)
scalars = st.one_of(
    st.none(), st.booleans(), numbers, st.text(max_size=20), st.binary(min_size=1, max_size=8)
)
sets = st.one_of(
    st.frozensets(st.text(max_size=8), min_size=1, max_size=4),
    st.frozensets(st.integers(-1000, 1000), min_size=1, max_size=4),
    st.frozensets(st.binary(min_size=1, max_size=4), min_size=1, max_size=4),
)
values = st.recursive(
    st.one_of(scalars, sets),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _unordered(attribute: Any) -> Any:
    """Sets serialize in iteration order; compare them as sets."""
    if isinstance(attribute, dict):
        return {
            key: frozenset(value) if key in ("SS", "NS", "BS") else _unordered(value)
            for key, value in attribute.items()
        }
    if isinstance(attribute, list):
        return [_unordered(item) for item in attribute]
    return attribute


def _unwrapped(value: Any) -> Any:
    """boto3 wraps binary values in its Binary class; the codec returns bytes."""
    if isinstance(value, Binary):
        return value.value
    if isinstance(value, dict):
        return {key: _unwrapped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrapped(item) for item in value]
    if isinstance(value, set):
        return {_unwrapped(item) for item in value}
    return value


@given(values)
def test_serializes_as_boto3_does(value: Any) -> None:
    assert _unordered(attribute_value(value)) == _unordered(TypeSerializer().serialize(value))


@given(values)
def test_deserializes_as_boto3_does(value: Any) -> None:
    attribute = TypeSerializer().serialize(value)
    assert plain_value(attribute) == _unwrapped(TypeDeserializer().deserialize(attribute))


def test_items_round_trip_with_floats_as_exact_decimals() -> None:
    item = {"score": 7, "mean": 0.1, "tags": ["a"], "details": {"n": 1.5, "none": None}, "ok": True}
    assert serialize(item)["mean"] == {"N": "0.1"}
    assert deserialize(serialize(item)) == item


@pytest.mark.parametrize(
    "value",
    [1.5, Decimal("Infinity"), Decimal("NaN"), Decimal("1" * 39), object(), {1.5}, {"a", 1}],
)
def test_refuses_what_boto3_refuses(value: Any) -> None:
    with pytest.raises((TypeError, ArithmeticError)) as ours:
        attribute_value(value)
    with pytest.raises((TypeError, ArithmeticError)) as theirs:
        TypeSerializer().serialize(value)
    assert type(ours.value) is type(theirs.value)


def test_refuses_unknown_attribute_types() -> None:
    with pytest.raises(TypeError):
        plain_value({"X": "1"})
    with pytest.raises(TypeError):
        plain_value({})

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback_core.access import authorizer_context, caller_user, require_scope, token_binding
from feedback_core.cursor import CursorCodec, _b64encode, query_scope
from feedback_core.errors import BadRequest, Forbidden, Unauthorized, ValidationFailed
from feedback_core.feedback import parse_if_match
from feedback_core.models import Principal, TokenClaims

CODEC = CursorCodec(b"0123456789abcdef0123456789abcdef")


def test_cursor_round_trip_is_url_safe() -> None:
    scope = query_scope(project="p", outcome="positive")
    cursor = CODEC.encode(scope, {"before": "2026-11-23T08:00:00.000Z#id/+="})
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert CODEC.decode(cursor, scope) == {"before": "2026-11-23T08:00:00.000Z#id/+="}


def test_cursor_is_bound_to_its_query() -> None:
    cursor = CODEC.encode(query_scope(project="p"), {"before": "x"})
    with pytest.raises(BadRequest):
        CODEC.decode(cursor, query_scope(project="q"))
    with pytest.raises(BadRequest):
        CursorCodec(b"another-secret-of-32-bytes-long!").decode(cursor, query_scope(project="p"))


@pytest.mark.parametrize("cursor", ["", "abc", "a.b.c", "!!!.???", "eyJiIjoxfQ.AAAA"])
def test_malformed_cursors_are_bad_requests(cursor: str) -> None:
    with pytest.raises(BadRequest):
        CODEC.decode(cursor, query_scope(project="p"))


def test_tampered_cursor_is_rejected() -> None:
    scope = query_scope(project="p")
    payload, mac = CODEC.encode(scope, {"before": "2026"}).split(".")
    forged = CODEC.encode(scope, {"before": "9999"}).split(".")[0]
    with pytest.raises(BadRequest):
        CODEC.decode(f"{forged}.{mac}", scope)
    assert CODEC.decode(f"{payload}.{mac}", scope) == {"before": "2026"}


def claims(uid: str | None = None) -> TokenClaims:
    return TokenClaims(iss="i", aud="feedback", sub="run", prj="p", uid=uid, iat=0, exp=1)


def test_bound_user_cannot_act_as_another() -> None:
    assert caller_user(claims("u"), None) == "u"
    assert caller_user(claims("u"), "u") == "u"
    with pytest.raises(Forbidden):
        caller_user(claims("u"), "v")


def test_unbound_token_names_the_user_or_is_anonymous() -> None:
    assert caller_user(claims(), "v") == "v"
    assert caller_user(claims(), None) == "anonymous"


def test_a_token_is_bound_when_it_names_a_user() -> None:
    assert token_binding(claims("u")) == "bound"
    assert token_binding(claims()) == "unbound"


def test_scopes_come_from_the_key_not_the_route() -> None:
    context = authorizer_context(Principal(project="p", scopes=frozenset({"feedback:read"}), key_id="k"))
    assert require_scope(context, "feedback:read").project == "p"
    with pytest.raises(Forbidden, match="tokens:write"):
        require_scope(context, "tokens:write")


def test_missing_or_invalid_key_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        require_scope(authorizer_context(None), "feedback:read")
    with pytest.raises(Unauthorized):
        require_scope(None, "feedback:read")


# ---- request values that once reached int() or DynamoDB unchecked ------------------------------------------


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _with_other_padding_bits(last: str) -> str:
    """16 bytes take 22 base64 characters; the last one's low 4 bits carry nothing, and a lenient decoder
    ignores them."""
    return BASE64URL[BASE64URL.index(last) ^ 1]


def test_a_cursor_has_one_spelling() -> None:
    scope = query_scope(project="p")
    payload, mac = CODEC.encode(scope, {"before": "2026"}).split(".")
    for respelled in [
        f"{payload}=.{mac}",  # padding
        f"{payload}.{mac}==",
        f"{payload[:4]}!{payload[4:]}.{mac}",  # a character base64 would skip
        f"{payload}\n.{mac}",
        f" {payload}.{mac}",
        f"{payload}.{mac}.",
        f"{payload}.{mac[:-1]}{_with_other_padding_bits(mac[-1])}",  # decodes to the same bytes
    ]:
        with pytest.raises(BadRequest):
            CODEC.decode(respelled, scope)


def test_a_signed_payload_that_is_not_a_position_is_refused() -> None:
    """Only this service can sign a cursor, but decoding still never trusts the payload's shape."""
    scope = query_scope(project="p")
    for payload in [b"[1]", b"\xff\xfe", b"1" * 5000, b"{"]:
        cursor = f"{_b64encode(payload)}.{_b64encode(CODEC._mac(scope, payload))}"
        with pytest.raises(BadRequest):
            CODEC.decode(cursor, scope)


@settings(max_examples=300)
@given(st.text(max_size=80) | st.from_regex(r"[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,30}", fullmatch=True))
def test_any_cursor_text_is_a_position_or_a_bad_request(text: str) -> None:
    with contextlib.suppress(BadRequest):
        assert isinstance(CODEC.decode(text, query_scope(project="p")), dict)


IF_MATCH_TEXT = st.text(max_size=20) | st.from_regex(
    r'(W/)?"?[0-9\u0660-\u0669\u00b2-]{0,45}"?', fullmatch=True
)


@settings(max_examples=300)
@given(IF_MATCH_TEXT)
def test_if_match_is_a_small_version_or_422(text: str) -> None:
    try:
        version = parse_if_match(text)
    except ValidationFailed:
        return
    assert version is not None and 0 <= version <= 999_999_999


@pytest.mark.parametrize(
    ("text", "version"), [('"3"', 3), ("3", 3), ('W/"3"', 3), (' "0" ', 0), ('"999999999"', 999_999_999)]
)
def test_if_match_spellings(text: str, version: int) -> None:
    assert parse_if_match(text) == version
    assert parse_if_match(None) is None


@pytest.mark.parametrize(
    "text", ['"' + "9" * 39 + '"', "9" * 10, '"\u00b2"', '"\u0663"', '"-1"', "", '"3', '""3""', "W/ 3", "3 4"]
)
def test_if_match_refusals(text: str) -> None:
    with pytest.raises(ValidationFailed, match="If-Match must be a record version"):
        parse_if_match(text)

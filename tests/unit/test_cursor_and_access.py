from __future__ import annotations

import pytest

from feedback_core.access import authorizer_context, caller_user, require_scope, token_binding
from feedback_core.cursor import CursorCodec, query_scope
from feedback_core.errors import BadRequest, Forbidden, Unauthorized
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

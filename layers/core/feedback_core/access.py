"""Who may do what: the API-key principal's scopes and the feedback token's run and user binding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from feedback_core.errors import Forbidden, Unauthorized
from feedback_core.fields import ANONYMOUS, Scope, TokenBinding
from feedback_core.models import Principal, TokenClaims


def authorizer_context(principal: Principal | None) -> dict[str, Any]:
    """What the authorizer hands to the route: everything the key may do, never a per-route decision.

    API Gateway caches this per key across routes, so it must not say "allowed" for one route and be
    replayed for another; each handler checks the scope it needs itself.
    """
    if principal is None:
        return {"authenticated": False}
    return {
        "authenticated": True,
        "project": principal.project,
        "scopes": " ".join(sorted(principal.scopes)),
        "key_id": principal.key_id,
    }


def require_scope(authorizer: Mapping[str, Any] | None, scope: Scope) -> Principal:
    """The calling key's principal, if it holds `scope`; 401 without a valid key, 403 without the scope."""
    context = authorizer or {}
    if not context.get("authenticated") or not context.get("project"):
        raise Unauthorized("a valid API key is required: Authorization: Bearer fbk_...")
    principal = Principal(
        project=str(context["project"]),
        scopes=frozenset(str(context.get("scopes", "")).split()),
        key_id=str(context.get("key_id", "")),
    )
    if scope not in principal.scopes:
        raise Forbidden(f"this API key lacks the scope {scope}")
    return principal


def caller_user(claims: TokenClaims, requested: str | None) -> str:
    """The user a token acts for: its bound user; else the one the caller names; else anonymous."""
    if claims.uid is not None:
        if requested is not None and requested != claims.uid:
            raise Forbidden("this feedback token is bound to another user")
        return claims.uid
    return requested if requested is not None else ANONYMOUS


def token_binding(claims: TokenClaims) -> TokenBinding:
    """Whether the token is bound to a user: what a bound token writes becomes that user's own, and a
    token with no user bound may then neither read, change nor retract it."""
    return "bound" if claims.uid is not None else "unbound"

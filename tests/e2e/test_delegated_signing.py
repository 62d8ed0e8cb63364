"""The local stack started with ``--parameter SigningMode=delegated``, over HTTP: tokens carry a
certificate, the browser-facing routes accept them, and the published JWKS verifies the chain."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import jwt
from jwt.utils import base64url_decode

from local.process import running


def test_the_local_stack_issues_and_accepts_delegated_tokens(tmp_path: Path) -> None:
    with running(tmp_path, "delegated", "--parameter", "SigningMode=delegated") as stack:
        credentials = stack.credentials()
        with httpx.Client(base_url=stack.endpoint, timeout=15) as api:
            key = {"Authorization": f"Bearer {credentials['api_key']}"}
            tokens = [
                api.post("/v1/tokens", headers=key, json={"run_id": f"run-{n}", "user_id": "dana"}).json()[
                    "feedback_token"
                ]
                for n in range(3)
            ]
            headers = [json.loads(base64url_decode(token.split(".", 1)[0])) for token in tokens]
            assert {header["cert"] for header in headers} == {headers[0]["cert"]}  # one certificate
            assert all(header.keys() == {"alg", "typ", "cert"} for header in headers)

            for token in tokens:
                submitted = api.post(
                    "/v1/feedback", headers={"X-Feedback-Token": token}, json={"outcome": "positive"}
                )
                assert submitted.status_code == 201, submitted.text
            mine = api.get("/v1/feedback/me", headers={"X-Feedback-Token": tokens[2]})
            assert (mine.status_code, mine.json()["run_id"]) == (200, "run-2")

            jwks = api.get("/.well-known/jwks.json").json()
            certificate = headers[0]["cert"]
            kid = jwt.get_unverified_header(certificate)["kid"]
            kms_key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
            certified = jwt.decode(certificate, kms_key, algorithms=["ES256"], options={"verify_iat": False})
            token_key = jwt.PyJWK(certified["cnf"]["jwk"], algorithm="ES256").key
            assert (
                jwt.decode(tokens[0], token_key, algorithms=["ES256"], audience="feedback")["sub"] == "run-0"
            )

            forged = tokens[0][:-4] + ("AAAA" if not tokens[0].endswith("AAAA") else "BBBB")
            refused = api.post(
                "/v1/feedback", headers={"X-Feedback-Token": forged}, json={"outcome": "negative"}
            )
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"

"""Standard Webhooks signatures: the secret's shape, the signature a receiver recomputes, and verify()."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

import pytest

from portal.webhooks import signing


def recompute(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """What a receiver following the Standard Webhooks spec computes, written out by hand."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_a_new_secret_is_whsec_and_24_random_bytes():
    first, second = signing.generate_secret(), signing.generate_secret()

    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{32}", first)
    assert len(base64.b64decode(first[len("whsec_"):])) == 24
    assert first != second


def test_the_headers_carry_the_id_the_timestamp_and_a_signature_the_receiver_can_recompute():
    secret = signing.generate_secret()
    body = b'{"event":{"type":"webhook.test","uuid":"u-1"},"payload":{}}'

    headers = signing.headers(secret, "msg-1", body, timestamp=1_700_000_000)

    assert headers["webhook-id"] == "msg-1"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == recompute(secret, "msg-1", "1700000000", body)


def test_verify_accepts_a_fresh_signed_request_with_any_header_case():
    secret = signing.generate_secret()
    body = '{"ok": true, "name": "Çiğdem"}'.encode()
    headers = {k.title(): v for k, v in signing.headers(secret, "msg-2", body).items()}

    assert signing.verify(secret, headers, body) == "msg-2"


def test_verify_accepts_when_one_of_several_signatures_matches():
    secret, old_secret = signing.generate_secret(), signing.generate_secret()
    body = b"{}"
    headers = signing.headers(secret, "msg-3", body)
    stale = signing.sign(old_secret, "msg-3", int(headers["webhook-timestamp"]), body)
    headers["webhook-signature"] = f"{stale} {headers['webhook-signature']}"

    assert signing.verify(secret, headers, body) == "msg-3"


@pytest.mark.parametrize("tamper, message", [
    (lambda h, b: (h, b + b" "), "no matching signature"),
    (lambda h, b: ({**h, "webhook-id": "other"}, b), "no matching signature"),
    (lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 600)}, b), "too far"),
    (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing webhook-signature"),
    (lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b), "no matching signature"),
])
def test_verify_refuses_tampered_stale_or_unsigned_requests(tamper, message):
    secret = signing.generate_secret()
    body = b'{"amount": 1}'
    headers, body = tamper(signing.headers(secret, "msg-4", body), body)

    with pytest.raises(signing.SignatureError, match=message):
        signing.verify(secret, headers, body)


def test_verify_refuses_another_secret_and_old_requests_outside_the_tolerance():
    secret = signing.generate_secret()
    body = b"{}"
    sent_at = int(time.time()) - 200
    headers = signing.headers(secret, "msg-5", body, timestamp=sent_at)

    with pytest.raises(signing.SignatureError):
        signing.verify(signing.generate_secret(), headers, body)
    assert signing.verify(secret, headers, body, tolerance=300) == "msg-5"
    with pytest.raises(signing.SignatureError, match="too far"):
        signing.verify(secret, headers, body, tolerance=60)

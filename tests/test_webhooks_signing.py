"""Standard Webhooks signatures: the secret's shape, and our signatures checked by the reference library.

The receiver side is the Standard Webhooks reference implementation (the `standardwebhooks` package), not a second
copy of our algorithm: what it accepts, a receiver that follows the spec accepts.
"""
from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from portal.webhooks import signing


def test_a_new_secret_is_whsec_and_24_random_bytes():
    first, second = signing.generate_secret(), signing.generate_secret()

    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{32}", first)
    assert len(base64.b64decode(first[len("whsec_"):])) == 24
    assert first != second


def test_the_reference_library_verifies_the_headers_we_send():
    secret = signing.generate_secret()
    body = '{"event":{"type":"webhook.test","uuid":"u-1"},"payload":{"name":"Çiğdem"}}'.encode()

    headers = signing.headers(secret, "msg-1", body)

    assert headers["webhook-id"] == "msg-1"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert Webhook(secret).verify(body, headers) == json.loads(body)


@pytest.mark.parametrize("tamper", [
    lambda secret, h, b: (secret, h, b + b" "),
    lambda secret, h, b: (secret, {**h, "webhook-id": "msg-other"}, b),
    lambda secret, h, b: (secret, {**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 1)}, b),
    lambda secret, h, b: (signing.generate_secret(), h, b),
], ids=["body", "id", "timestamp", "secret"])
def test_the_reference_library_refuses_our_signature_on_anything_else(tamper):
    secret = signing.generate_secret()
    body = b'{"amount": 1}'
    secret, headers, body = tamper(secret, signing.headers(secret, "msg-1", body), body)

    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(body, headers)


def test_our_signature_at_a_fixed_time_is_the_reference_signature():
    secret = signing.generate_secret()
    body = '{"payload": {"city": "İzmir"}}'

    ours = signing.sign(secret, "msg-6", 1_700_000_000, body.encode())

    assert ours == Webhook(secret).sign("msg-6", datetime.fromtimestamp(1_700_000_000, tz=UTC), body)


def test_our_verify_accepts_what_the_reference_library_signs():
    secret = signing.generate_secret()
    body = '{"ok": true}'
    now = datetime.now(tz=UTC)
    headers = {"webhook-id": "msg-7", "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(secret).sign("msg-7", now, body)}

    assert signing.verify(secret, headers, body.encode()) == "msg-7"


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

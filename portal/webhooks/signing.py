"""Standard Webhooks signatures (https://www.standardwebhooks.com/): whsec_ secrets and the three headers.

The sender signs f"{webhook-id}.{webhook-timestamp}.{body}" with HMAC-SHA256 under the base64-decoded
secret and sends "v1,<base64 signature>" in webhook-signature (several may be given, space-separated).
The webhook-id is the outbox message's uuid, so it is the same on every retry and receivers de-duplicate.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
VERSION = "v1"
TOLERANCE_SECONDS = 5 * 60

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class SignatureError(Exception):
    """The request is not signed with this secret, or it is too old or from the future."""


def generate_secret() -> str:
    """A new signing secret: "whsec_" + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part after the whsec_ prefix."""
    encoded = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the secret is not a whsec_ base64 secret") from None


def _bytes(body: bytes | str) -> bytes:
    """The body as bytes (text is UTF-8)."""
    return body if isinstance(body, bytes) else body.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The webhook-signature value for one message: "v1,<base64 HMAC-SHA256>"."""
    signed = f"{msg_id}.{int(timestamp)}.".encode() + _bytes(body)
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def headers(secret: str, msg_id: str, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for a message sent now (or at the given unix time)."""
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body)}


def _header(request_headers: Mapping[str, str], name: str) -> str:
    """A header value looked up without regard to case; raises SignatureError when missing."""
    for key, value in request_headers.items():
        if key.lower() == name:
            return value
    raise SignatureError(f"missing {name} header")


def verify(secret: str, request_headers: Mapping[str, str], body: bytes | str, *,
           tolerance: int = TOLERANCE_SECONDS, now: float | None = None) -> str:
    """Check a received webhook the way a receiver should; returns its webhook-id or raises SignatureError.

    The timestamp must be within `tolerance` seconds of now (replay protection) and one of the
    space-separated v1 signatures must match, compared in constant time.
    """
    msg_id = _header(request_headers, ID_HEADER)
    raw_timestamp = _header(request_headers, TIMESTAMP_HEADER)
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError("webhook-timestamp is too far from now")
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
    for candidate in _header(request_headers, SIGNATURE_HEADER).split():
        version, _, signature = candidate.partition(",")
        if version == VERSION and hmac.compare_digest(signature.encode(), expected.encode()):
            return msg_id
    raise SignatureError("no matching signature")


# What check() found: a code a screen can explain, and a technical detail (a header name, a number of seconds).
VALID = "valid"
MISSING_HEADER = "missing_header"
MALFORMED_TIMESTAMP = "malformed_timestamp"
STALE_TIMESTAMP = "stale_timestamp"
MALFORMED_SIGNATURE = "malformed_signature"
MALFORMED_SECRET = "malformed_secret"
NO_MATCH = "no_match"


def _well_formed(candidate: str) -> bool:
    """True for "v1,<base64 of 32 bytes>" (one entry of webhook-signature)."""
    version, sep, signature = candidate.partition(",")
    if not sep or version != VERSION:
        return False
    try:
        return len(base64.b64decode(signature, validate=True)) == hashlib.sha256().digest_size
    except (binascii.Error, ValueError):
        return False


def check(secret: str, request_headers: Mapping[str, str], body: bytes | str, *,
          tolerance: int = TOLERANCE_SECONDS, now: float | None = None) -> tuple[str, str]:
    """Why a request is (not) validly signed with this secret: (code, detail), e.g. ("missing_header", "webhook-id").

    The same rules as verify(), with the reason spelled out for a person: a malformed secret or header, a
    timestamp outside the tolerance (detail: seconds off, negative when in the future), or no signature
    that matches (a wrong secret, or a body or header changed on the way: the two look the same).
    """
    try:
        _key(secret.strip())
    except SignatureError:
        return MALFORMED_SECRET, ""
    for name in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER):
        try:
            _header(request_headers, name)
        except SignatureError:
            return MISSING_HEADER, name
    raw_timestamp = _header(request_headers, TIMESTAMP_HEADER).strip()
    if not raw_timestamp.isdigit() or not raw_timestamp.isascii():
        return MALFORMED_TIMESTAMP, raw_timestamp[:40]
    candidates = _header(request_headers, SIGNATURE_HEADER).split()
    if not candidates or not any(_well_formed(c) for c in candidates):
        return MALFORMED_SIGNATURE, ""
    now = time.time() if now is None else now
    if abs(now - int(raw_timestamp)) > tolerance:
        return STALE_TIMESTAMP, str(int(now - int(raw_timestamp)))
    try:
        verify(secret.strip(), request_headers, body, tolerance=tolerance, now=now)
    except SignatureError:
        return NO_MATCH, ""
    return VALID, ""

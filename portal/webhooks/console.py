"""The webhook console's words: signature verdicts, pasted headers, and failed deliveries in plain language.

What a screen says about a signature check (portal.webhooks.signing.check, the inspector) and about a
failed delivery attempt: a plain sentence that says what to do, with the technical text kept for a
disclosure. Nothing here touches the database.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from flask_babel import gettext as _

from portal.webhooks import inspector, signing


@dataclass
class Verdict:
    """A signature check explained: valid or not, the headline, and what to do about it."""

    valid: bool
    title: str
    advice: str


def explain(code: str, detail: str = "") -> Verdict:
    """A signature check result (code, detail) from signing.check or the inspector, in words."""
    if code == signing.VALID:
        return Verdict(True, _("Valid signature"), _("The body and headers are exactly what was signed with this secret."))
    if code == signing.MALFORMED_SECRET:
        return Verdict(False, _("The secret is not a signing secret"),
                       _("A signing secret starts with whsec_ followed by base64 text. Copy it again from the "
                         "subscription (or rotate it to get a new one)."))
    if code == signing.MISSING_HEADER:
        return Verdict(False, _("Malformed headers: %(name)s is missing", name=detail),
                       _("A signed delivery has the webhook-id, webhook-timestamp and webhook-signature headers. "
                         "Paste all three, one per line, as name: value."))
    if code == signing.MALFORMED_TIMESTAMP:
        return Verdict(False, _("Malformed header: webhook-timestamp is not a number"),
                       _("webhook-timestamp is the number of seconds since 1970 when the delivery was signed."))
    if code == signing.MALFORMED_SIGNATURE:
        return Verdict(False, _("Malformed header: webhook-signature"),
                       _("webhook-signature holds one or more v1,<base64 signature> entries separated by spaces."))
    if code == signing.STALE_TIMESTAMP:
        seconds = int(detail) if detail.lstrip("-").isdigit() else 0
        when = (_("%(num)s seconds in the future", num=-seconds) if seconds < 0
                else _("%(num)s seconds old", num=seconds))
        return Verdict(False, _("Stale timestamp: the delivery is %(when)s", when=when),
                       _("Receivers refuse deliveries signed more than %(num)s minutes from now, so an old "
                         "delivery cannot be replayed. Send a new one, and check the receiver's clock.",
                         num=signing.TOLERANCE_SECONDS // 60))
    if code == signing.NO_MATCH:
        return Verdict(False, _("Wrong secret, or the body was changed"),
                       _("No signature matches. Either the secret is not this subscription's (was it rotated?), "
                         "or the body or webhook-id was changed on the way: check it byte for byte, with no "
                         "reformatting of the JSON."))
    if code == inspector.UNKNOWN_SENDER:
        return Verdict(False, _("Not sent by a subscription of this portal"),
                       _("Its webhook-id names no delivery of this portal, so there is no secret to check it with."))
    return Verdict(False, _("Not checked"), detail)


def parse_pasted_headers(text: str) -> dict[str, str]:
    """Headers pasted as "name: value" lines (or a JSON object); blank and malformed lines are left out."""
    text = (text or "").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return {str(k).strip(): str(v).strip() for k, v in data.items()}
    headers: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers[name.strip()] = value.strip()
    return headers


def failure_summary(status_code: int | None, error: str) -> str:
    """What a failed attempt means and what to do, in a sentence; the raw error goes behind a disclosure."""
    low = (error or "").lower()
    if status_code is not None:
        if 300 <= status_code < 400:
            return _("The receiver redirected the delivery: use the final address as the target URL.")
        if status_code == 410:
            return _("The receiver said it no longer wants these events (410 Gone).")
        if status_code in (401, 403):
            return _("The receiver refused the delivery (HTTP %(status)s): check the token in the additional "
                     "headers, or the secret the receiver checks the signature with.", status=status_code)
        if status_code >= 500:
            return _("The receiver had an error (HTTP %(status)s): check the receiving system.", status=status_code)
        return _("The receiver answered HTTP %(status)s instead of 2xx: check the target URL.", status=status_code)
    if "certificate" in low or "ssl" in low or "tls" in low:
        return _("The receiver's HTTPS certificate could not be verified: check the URL, or the receiver's certificate.")
    if "refused to connect" in low or "webhook_allow_private_targets" in low:
        return _("The address is inside a private network, where deliveries may not go: use a public URL.")
    if "timeout" in low or "timed out" in low or "within" in low:
        return _("The receiver did not answer in time: check that it is running and reachable.")
    if "resolve" in low or "name or service" in low or "getaddrinfo" in low or "nodename" in low:
        return _("The host name could not be found: check the target URL.")
    if "refused" in low:
        return _("Nothing answered at this address: check the target URL and that the receiver is running.")
    return _("The address could not be reached: check the target URL.")

"""The demo cargo service's client (sandbox/cargo.py, served by the bundled sandbox), over HTTP with requests."""
from __future__ import annotations

import requests

from portal import outbound
from portal.cargo.clients.base import (
    TRACKING_STATES,
    CargoError,
    CreatedShipment,
    ShipmentRequest,
    TrackingState,
)

# The demo clients of step 14 and the service's profile each one uses.
PROFILES = {
    "DemoShippingClient": "instant",
    "DemoDelayedShippingClient": "delayed",
    "DemoFailingShippingClient": "failing",
}
MAX_TRACKED = 500  # tracking numbers per call


def _detail(response: requests.Response) -> str:
    """The service's error message, or the start of its answer."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail") if isinstance(body, dict) and body.get("detail") else body)[:300]


class SandboxCargoClient:
    """Talks to the demo cargo service at base_url with one of its profiles (instant, delayed, failing)."""

    def __init__(self, base_url: str, profile: str, *, timeout: float = 10, session: requests.Session | None = None):
        if not base_url:
            raise CargoError("No address for the demo cargo service: set CARGO_SERVICE_URL or OMNITRON_URL.",
                             retryable=False)
        self.base_url = base_url.rstrip("/")
        self.profile = profile
        self.timeout = timeout
        self.http = session or outbound.guarded_session()

    def _call(self, method: str, path: str, json: dict | None = None) -> requests.Response:
        """One request; raises CargoError when the service cannot be reached or answers a server error."""
        try:
            response = self.http.request(method, f"{self.base_url}{path}", json=json, timeout=self.timeout)
        except outbound.BlockedAddress:
            raise CargoError(outbound.refusal_message(self.base_url), retryable=False) from None
        except requests.Timeout:
            raise CargoError(f"The cargo service did not answer within {self.timeout:g} s.") from None
        except requests.RequestException as exc:
            raise CargoError(f"The cargo service could not be reached ({exc.__class__.__name__}).") from None
        if response.status_code >= 500:
            raise CargoError(f"The cargo service failed ({response.status_code}): {_detail(response)}")
        return response

    def create_shipment(self, request: ShipmentRequest) -> CreatedShipment:
        """Create the shipment (idempotent by request.key) and fetch its label."""
        body = {"key": request.key, "profile": self.profile, "reference": request.reference,
                "parcels": request.parcels,
                "sender": {"name": request.sender.name, "line": request.sender.line, "city": request.sender.city},
                "recipient": {"name": request.recipient.name, "line": request.recipient.line,
                              "city": request.recipient.city, "phone": request.recipient.phone}}
        response = self._call("POST", "/cargo/v1/shipments/", body)
        if response.status_code not in (200, 201):
            # 4xx: the service refused this shipment; trying the same request again gives the same answer,
            # except for 408/429 (too slow, too many).
            raise CargoError(f"The cargo service refused the shipment ({response.status_code}): {_detail(response)}",
                             retryable=response.status_code in (408, 429))
        try:
            data = response.json()
            tracking_number, status = str(data["tracking_number"]), str(data["status"])
        except (ValueError, KeyError, TypeError):
            raise CargoError("The cargo service answered without a tracking number.") from None
        label = self._call("GET", f"/cargo/v1/shipments/{tracking_number}/label.pdf")
        if label.status_code != 200 or not label.content.startswith(b"%PDF"):
            raise CargoError(f"The cargo service gave no label for {tracking_number} ({label.status_code}).")
        return CreatedShipment(tracking_number=tracking_number, status=status, label=label.content)

    def track(self, tracking_numbers: list[str]) -> dict[str, TrackingState]:
        """The states of these shipments, MAX_TRACKED per call."""
        states: dict[str, TrackingState] = {}
        for start in range(0, len(tracking_numbers), MAX_TRACKED):
            chunk = tracking_numbers[start:start + MAX_TRACKED]
            response = self._call("POST", "/cargo/v1/tracking/", {"tracking_numbers": chunk})
            if response.status_code != 200:
                raise CargoError(f"The cargo service refused the tracking query ({response.status_code}): "
                                 f"{_detail(response)}")
            try:
                results = response.json()["results"]
                for row in results:
                    if row["status"] in TRACKING_STATES:
                        states[row["tracking_number"]] = TrackingState(row["tracking_number"], row["status"],
                                                                       list(row.get("history") or []))
            except (ValueError, KeyError, TypeError):
                raise CargoError("The cargo service's tracking answer could not be read.") from None
        return states

"""The demo cargo service: creates shipments, hands out tracking numbers and PDF labels, reports tracking states.

It stands in for a cargo company's API behind the portal's demo clients (setup step 14). Shipments live in
memory while the sandbox runs.

API (JSON; errors are {"detail": "..."}):
- POST /cargo/v1/shipments/ {"key", "profile", "reference", "sender": {...}, "recipient": {...}, "parcels"}:
  201 with the new shipment, or 200 with the one already made for that key (idempotent by the shipper's key);
  422 when the profile refuses shipments ("failing"), 400 for a malformed request.
- GET /cargo/v1/shipments/<tracking_number>/: the shipment and its tracking history.
- GET /cargo/v1/shipments/<tracking_number>/label.pdf: the label.
- POST /cargo/v1/tracking/ {"tracking_numbers": [...]}: the state of many shipments at once (unknown ones
  are left out).

Tracking states: created -> in_transit -> (attempted_delivery ->) delivered, or ... -> delivery_failed. Each
shipment follows a route chosen from its key (most are delivered at the first try, some after an attempted
delivery, a few fail). States advance one step per SANDBOX_CARGO_STEP_SECONDS (0: never by themselves), and
on demand through the control endpoints, which keeps tests deterministic:
- POST /__sandbox__/cargo/advance {"tracking_number"?, "steps"?: 1}: move one shipment (or every one) along;
- POST /__sandbox__/cargo/status {"tracking_number", "status"}: put a shipment in a given state;
- GET /__sandbox__/cargo/shipments: every shipment; DELETE /__sandbox__/cargo/shipments: forget them all.
Faults (/__sandbox__/faults with a /cargo/... path) make the service answer errors, late, or not at all.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from flask import Flask, Response, current_app, jsonify, request

from sandbox.data import quick_hash
from sandbox.label_pdf import label_pdf

CREATED, IN_TRANSIT, ATTEMPTED, DELIVERED, FAILED = (
    "created", "in_transit", "attempted_delivery", "delivered", "delivery_failed")
STATUSES = (CREATED, IN_TRANSIT, ATTEMPTED, DELIVERED, FAILED)
ROUTES = {
    "direct": (CREATED, IN_TRANSIT, DELIVERED),
    "second_try": (CREATED, IN_TRANSIT, ATTEMPTED, DELIVERED),
    "failed": (CREATED, IN_TRANSIT, ATTEMPTED, FAILED),
}
# Profiles, one per demo client of the portal: how shipments are made and how fast they move.
PROFILES = ("instant", "delayed", "failing")
CARRIER = "Demo Cargo"
MAX_KEY = 120


@dataclass
class CargoShipment:
    """One shipment: its key (the shipper's), tracking number, route, position on it and history."""

    key: str
    tracking_number: str
    profile: str
    reference: str
    route: tuple[str, ...]
    sender: dict
    recipient: dict
    parcels: int
    created: float
    position: int = 0
    manual: bool = False  # a control endpoint moved it: time no longer does
    history: list[dict] = field(default_factory=list)

    @property
    def status(self) -> str:
        """Where the shipment is now."""
        return self.route[self.position]

    def move_to(self, status: str, now: float) -> None:
        """Put the shipment in a state (appending it to the route when the route does not have it)."""
        if status in self.route[self.position:]:
            self.position = self.route.index(status, self.position)
        else:
            self.route = (*self.route[:self.position + 1], status)
            self.position = len(self.route) - 1
        self.history.append({"status": status, "at": now})

    def as_json(self, base_url: str) -> dict:
        """The shipment as the API shows it."""
        return {"key": self.key, "tracking_number": self.tracking_number, "status": self.status,
                "reference": self.reference, "profile": self.profile, "parcels": self.parcels,
                "label_url": f"{base_url}cargo/v1/shipments/{self.tracking_number}/label.pdf",
                "history": [dict(h) for h in self.history]}


@dataclass
class CargoService:
    """The shipments the service has made, by key and by tracking number; thread-safe."""

    step_seconds: float = 0
    seed: int = 2024
    by_key: dict[str, CargoShipment] = field(default_factory=dict)
    by_tracking: dict[str, CargoShipment] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tracking_number_for(self, key: str) -> str:
        """A 12-digit tracking number derived from the key, unique here (call with the lock held)."""
        digest = quick_hash(self.seed, 77, sum((i + 1) * ord(c) for i, c in enumerate(key)) * 131 + len(key))
        while True:
            body = f"7{digest % 10**10:010d}"
            number = body + str(sum(int(d) for d in body) % 10)
            if number not in self.by_tracking:
                return number
            digest += 1

    def route_for(self, key: str) -> tuple[str, ...]:
        """Most shipments go straight through; about one in five needs a second try, one in ten fails."""
        roll = quick_hash(self.seed, 78, sum(ord(c) for c in key) * 7 + len(key)) % 100
        if roll < 70:
            return ROUTES["direct"]
        return ROUTES["second_try"] if roll < 90 else ROUTES["failed"]

    def create(self, data: dict, now: float) -> tuple[CargoShipment, bool]:
        """Make the shipment for data["key"], or return the one made already; (shipment, created)."""
        with self.lock:
            existing = self.by_key.get(data["key"])
            if existing is not None:
                return existing, False
            shipment = CargoShipment(
                key=data["key"], tracking_number=self.tracking_number_for(data["key"]), profile=data["profile"],
                reference=data["reference"], route=self.route_for(data["key"]), sender=data["sender"],
                recipient=data["recipient"], parcels=data["parcels"], created=now,
                history=[{"status": CREATED, "at": now}])
            self.by_key[shipment.key] = shipment
            self.by_tracking[shipment.tracking_number] = shipment
            return shipment, True

    def step_seconds_for(self, shipment: CargoShipment) -> float:
        """How long one step takes: the delayed profile takes four times as long."""
        return self.step_seconds * (4 if shipment.profile == "delayed" else 1)

    def catch_up(self, shipment: CargoShipment, now: float) -> None:
        """Advance a shipment along its route by the time passed (unless time is off or a test moved it)."""
        step = self.step_seconds_for(shipment)
        if not step or shipment.manual:
            return
        due = min(len(shipment.route) - 1, int((now - shipment.created) // step))
        while shipment.position < due:
            shipment.position += 1
            shipment.history.append({"status": shipment.status, "at": shipment.created + shipment.position * step})

    def find(self, tracking_number: str, now: float) -> CargoShipment | None:
        """A shipment by tracking number, brought up to date."""
        with self.lock:
            shipment = self.by_tracking.get(tracking_number)
            if shipment is not None:
                self.catch_up(shipment, now)
            return shipment

    def advance(self, tracking_number: str | None, steps: int, now: float) -> list[CargoShipment]:
        """Move one shipment (or every one) `steps` along its route; returns those moved."""
        with self.lock:
            chosen = [self.by_tracking[tracking_number]] if tracking_number else list(self.by_tracking.values())
            moved = []
            for shipment in chosen:
                shipment.manual = True
                target = min(len(shipment.route) - 1, shipment.position + steps)
                if target != shipment.position:
                    shipment.position = target
                    shipment.history.append({"status": shipment.status, "at": now})
                    moved.append(shipment)
            return moved

    def set_status(self, tracking_number: str, status: str, now: float) -> CargoShipment:
        """Put a shipment in a state."""
        with self.lock:
            shipment = self.by_tracking[tracking_number]
            shipment.manual = True
            if shipment.status != status:
                shipment.move_to(status, now)
            return shipment

    def clear(self) -> None:
        """Forget every shipment."""
        with self.lock:
            self.by_key.clear()
            self.by_tracking.clear()


def cargo_service() -> CargoService:
    """The running sandbox's cargo service."""
    return current_app.extensions["sandbox_cargo"]


def _error(status: int, detail: str) -> Response:
    """A JSON error."""
    response = jsonify({"detail": detail})
    response.status_code = status
    return response


def _lines(value: object) -> dict:
    """An address object with text values only (name, phone, line, city)."""
    if not isinstance(value, dict):
        return {}
    return {k: str(v)[:200] for k, v in value.items() if k in ("name", "phone", "line", "city") and v is not None}


def _shipment_request(data: object) -> dict | str:
    """The cleaned create request, or what is wrong with it."""
    if not isinstance(data, dict):
        return "Send a JSON object."
    key = data.get("key")
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
        return f'"key" must be a non-empty string of at most {MAX_KEY} characters.'
    profile = data.get("profile", "instant")
    if profile not in PROFILES:
        return f'"profile" must be one of {", ".join(PROFILES)}.'
    recipient = _lines(data.get("recipient"))
    if not recipient.get("name"):
        return '"recipient" needs a "name".'
    parcels = data.get("parcels", 1)
    if not isinstance(parcels, int) or isinstance(parcels, bool) or not 1 <= parcels <= 99:
        return '"parcels" must be a whole number from 1 to 99.'
    return {"key": key.strip(), "profile": profile, "reference": str(data.get("reference") or key)[:64],
            "sender": _lines(data.get("sender")), "recipient": recipient, "parcels": parcels}


def register(app: Flask) -> None:
    """The cargo service's routes and control endpoints, on the sandbox app."""
    app.extensions["sandbox_cargo"] = CargoService(step_seconds=float(app.config["SANDBOX_CARGO_STEP_SECONDS"]),
                                                   seed=int(app.config["SANDBOX_SEED"]))

    @app.post("/cargo/v1/shipments/")
    def create_shipment():
        """Create a shipment, idempotent by the shipper's key."""
        cleaned = _shipment_request(request.get_json(silent=True))
        if isinstance(cleaned, str):
            return _error(400, cleaned)
        if cleaned["profile"] == "failing":
            return _error(422, "The demo cargo company refuses every shipment (DemoFailingShippingClient).")
        shipment, created = cargo_service().create(cleaned, time.time())
        return jsonify(shipment.as_json(request.host_url)), 201 if created else 200

    @app.get("/cargo/v1/shipments/<tracking_number>/")
    def show_shipment(tracking_number: str):
        """One shipment with its tracking history."""
        shipment = cargo_service().find(tracking_number, time.time())
        if shipment is None:
            return _error(404, f"No shipment with tracking number {tracking_number}.")
        return jsonify(shipment.as_json(request.host_url))

    @app.get("/cargo/v1/shipments/<tracking_number>/label.pdf")
    def shipment_label(tracking_number: str):
        """The shipment's label as a PDF."""
        shipment = cargo_service().find(tracking_number, time.time())
        if shipment is None:
            return _error(404, f"No shipment with tracking number {tracking_number}.")
        sender, to = shipment.sender, shipment.recipient
        pdf = label_pdf(tracking_number=shipment.tracking_number, carrier=CARRIER,
                        sender=[v for v in (sender.get("name"), sender.get("line"), sender.get("city")) if v],
                        recipient=[v for v in (to.get("name"), to.get("line"), to.get("city"), to.get("phone")) if v],
                        reference=shipment.reference, weight_note=f"{shipment.parcels} parcel(s)")
        return Response(pdf, mimetype="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="label-{tracking_number}.pdf"'})

    @app.post("/cargo/v1/tracking/")
    def track_many():
        """The states of many shipments: {"results": [{"tracking_number", "status", "history"}]}."""
        data = request.get_json(silent=True)
        numbers = data.get("tracking_numbers") if isinstance(data, dict) else None
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers) or len(numbers) > 500:
            return _error(400, '"tracking_numbers" must be a list of at most 500 tracking numbers.')
        service, now, results = cargo_service(), time.time(), []
        for number in numbers:
            shipment = service.find(number, now)
            if shipment is not None:
                results.append({"tracking_number": number, "status": shipment.status,
                                "history": [dict(h) for h in shipment.history]})
        return jsonify({"results": results})

    @app.post("/__sandbox__/cargo/advance")
    def advance_shipments():
        """Move one shipment ({"tracking_number"}) or every one along its route ({"steps"}, default 1)."""
        data = request.get_json(silent=True) or {}
        number, steps = data.get("tracking_number"), data.get("steps", 1)
        if not isinstance(steps, int) or steps < 1:
            return _error(400, '"steps" must be a positive whole number.')
        if number is not None and number not in cargo_service().by_tracking:
            return _error(404, f"No shipment with tracking number {number}.")
        moved = cargo_service().advance(number, steps, time.time())
        return jsonify({"moved": [{"tracking_number": s.tracking_number, "status": s.status} for s in moved]})

    @app.post("/__sandbox__/cargo/status")
    def set_shipment_status():
        """Put a shipment in a state: {"tracking_number", "status"}."""
        data = request.get_json(silent=True) or {}
        number, status = data.get("tracking_number"), data.get("status")
        if status not in STATUSES:
            return _error(400, f'"status" must be one of {", ".join(STATUSES)}.')
        if number not in cargo_service().by_tracking:
            return _error(404, f"No shipment with tracking number {number}.")
        shipment = cargo_service().set_status(number, status, time.time())
        return jsonify(shipment.as_json(request.host_url))

    @app.get("/__sandbox__/cargo/shipments")
    def list_shipments():
        """Every shipment the service made."""
        service = cargo_service()
        with service.lock:
            shipments = list(service.by_key.values())
        return jsonify([s.as_json(request.host_url) for s in shipments])

    @app.delete("/__sandbox__/cargo/shipments")
    def forget_shipments():
        """Forget every shipment."""
        cargo_service().clear()
        return "", 204

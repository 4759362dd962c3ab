"""The Omnitron sandbox: a small WSGI app with Omnitron's token auth and DRF-style paginated JSON.

Resources (all GET, paginated with ?page=N&limit=M, limit capped at 1000, optional ?modified_date__gt=):
/api/v1/countries/, cities/, townships/, districts/, stock_locations/, channels/, orders/, and /<id>/ for one
record. The order list also takes status= and channel= (repeated or comma-separated), created_date__gte=,
created_date__lt=, modified_date__gte=, is_test=true|false and ordering= (id, created_date, modified_date,
each optionally with a leading "-"; ties are broken by id).
Control endpoints under /__sandbox__/ let tests and admins change data and inject failures.
The demo cargo service (shipments, labels, tracking) is served under /cargo/v1/ (sandbox/cargo.py).
Beside Omnitron, it stands in for two outside services the setup wizard tests: a stock service per engine
under /stock-engines/<engine>/ (step 10) and Google's and Yandex's geocoding APIs (step 9, sandbox/geocoding.py).
"""
from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import Flask, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from sandbox import cargo, orders
from sandbox.data import Dataset, format_date, parse_date, quick_hash
from sandbox.faults import FaultPlan, fault_from_json
from sandbox.geocoding import register_geocoding
from sandbox.places import STOCK_ENGINES

RESOURCES = ("countries", "cities", "townships", "districts", "stock_locations", "channels", "orders")
PUBLIC_PATHS = ("/api/v1/health/", "/api/v1/auth/login/")
STOCK_ENGINES_PATH = "/api/v1/oms/setup/product-stock-integration/available-stock-engines/"


def _env_int(name: str, default: int) -> int:
    """An integer from the environment."""
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def default_config() -> dict:
    """The sandbox's settings, each from a SANDBOX_* environment variable with a development default."""
    return {
        "SANDBOX_SEED": _env_int("SANDBOX_SEED", 2024),
        "SANDBOX_ADDRESS_COUNT": _env_int("SANDBOX_ADDRESS_COUNT", 3000),
        "SANDBOX_STORE_COUNT": _env_int("SANDBOX_STORE_COUNT", 100),
        "SANDBOX_ORDER_COUNT": _env_int("SANDBOX_ORDER_COUNT", 300),
        "SANDBOX_USERNAME": os.environ.get("SANDBOX_USERNAME", "oms.application"),
        "SANDBOX_PASSWORD": os.environ.get("SANDBOX_PASSWORD", "sandbox-password"),
        # A user who can log in but has no permission on any resource (answers 403).
        "SANDBOX_LIMITED_USERNAME": os.environ.get("SANDBOX_LIMITED_USERNAME", "oms.readonly"),
        "SANDBOX_LIMITED_PASSWORD": os.environ.get("SANDBOX_LIMITED_PASSWORD", "readonly-password"),
        "SANDBOX_STOCK_USERNAME": os.environ.get("SANDBOX_STOCK_USERNAME", "stock.user"),
        "SANDBOX_STOCK_PASSWORD": os.environ.get("SANDBOX_STOCK_PASSWORD", "stock-password"),
        "SANDBOX_PAGE_SIZE": _env_int("SANDBOX_PAGE_SIZE", 50),
        "SANDBOX_MAX_PAGE_SIZE": _env_int("SANDBOX_MAX_PAGE_SIZE", 1000),
        # Empty: the /__sandbox__/ endpoints are open (a sandbox on a laptop); set it to require X-Sandbox-Admin.
        "SANDBOX_ADMIN_TOKEN": os.environ.get("SANDBOX_ADMIN_TOKEN", ""),
        "SANDBOX_FAULTS": [],
        # The demo cargo service (sandbox/cargo.py): seconds per tracking step; 0 moves shipments only on demand.
        "SANDBOX_CARGO_STEP_SECONDS": float(os.environ.get("SANDBOX_CARGO_STEP_SECONDS", "") or 60),
    }


@dataclass
class SandboxState:
    """Everything the sandbox remembers while it runs: data changes, tokens, faults and recent requests."""

    dataset: Dataset
    users: dict[str, tuple[str, bool]]  # username -> (password, has permission)
    faults: FaultPlan = field(default_factory=FaultPlan)
    tokens: dict[str, str] = field(default_factory=dict)  # token -> username
    requests: deque = field(default_factory=lambda: deque(maxlen=1000))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def token_for(self, username: str) -> str:
        """The user's token, created on first login and reused after, as DRF's obtain_auth_token does."""
        with self.lock:
            for token, owner in self.tokens.items():
                if owner == username:
                    return token
            token = secrets.token_hex(20)
            self.tokens[token] = username
            return token


class _SandboxJSON(DefaultJSONProvider):
    """Flask's JSON, unsorted and not ASCII-escaped."""

    sort_keys = False
    ensure_ascii = False


def create_app(config: dict | None = None) -> Flask:
    """Build the sandbox app; `config` overrides the SANDBOX_* defaults."""
    app = Flask(__name__)
    app.config.update(default_config())
    app.config.update(config or {})
    # Records go out in the order they were built, and Turkish names stay readable in the raw JSON.
    app.json = _SandboxJSON(app)
    state = SandboxState(
        dataset=Dataset(app.config["SANDBOX_SEED"], app.config["SANDBOX_ADDRESS_COUNT"],
                        app.config["SANDBOX_STORE_COUNT"], app.config["SANDBOX_ORDER_COUNT"]),
        users={app.config["SANDBOX_USERNAME"]: (app.config["SANDBOX_PASSWORD"], True),
               app.config["SANDBOX_LIMITED_USERNAME"]: (app.config["SANDBOX_LIMITED_PASSWORD"], False)},
    )
    for fault in app.config["SANDBOX_FAULTS"]:
        state.faults.add(fault_from_json(fault))
    app.extensions["omnitron_sandbox"] = state
    app.before_request(_before_request)
    app.register_error_handler(HTTPException, _http_error)
    _register_api(app)
    _register_stock_engines(app)
    register_geocoding(app)
    _register_control(app)
    cargo.register(app)
    return app


def sandbox_state() -> SandboxState:
    """The running sandbox's state."""
    return current_app.extensions["omnitron_sandbox"]


def _error(status: int, detail, headers: dict | None = None) -> Response:
    """A DRF-style error body: {"detail": "..."} (or a field -> messages mapping)."""
    response = jsonify(detail if isinstance(detail, dict) else {"detail": detail})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _http_error(error: HTTPException) -> Response:
    """Routing errors (unknown path, wrong method) in JSON, like the rest of the API."""
    return _error(error.code or 500, "Not found." if error.code == 404 else error.description)


def _request_page() -> int:
    """The ?page= of the request, 0 when it is not a number (the list view answers that with 404)."""
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() else 0


def _drop_connection() -> Response:
    """Close the client's connection without an answer, as a crashed or restarted server does."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        # Werkzeug then fails to write the response and treats it as a connection the client dropped.
        sock.shutdown(socket.SHUT_RDWR)
        return Response(status=500)

    def truncated():
        """Half a body: the client sees the connection end early."""
        yield b'{"count": '
    # Without the raw socket (another WSGI server), promise more body than is sent.
    return Response(truncated(), status=200, headers={"Content-Length": "1000"}, mimetype="application/json")


def _before_request():
    """Log the request, apply an armed fault, then check the token on API paths."""
    state = sandbox_state()
    path = request.path
    if path.startswith("/__sandbox__/"):
        return _check_admin()
    state.requests.append({"method": request.method, "path": path, "query": request.query_string.decode(),
                           "authorization": request.headers.get("Authorization", "").split(" ")[0]})
    fault = state.faults.take(request.method, path, _request_page())
    if fault:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            return _drop_connection()
        if fault.status:
            return _error(fault.status, f"Injected fault {fault.id}: {fault.status} from the Omnitron sandbox.")
    if path.startswith("/api/") and path not in PUBLIC_PATHS:
        return _check_token(state)
    return None


def _check_token(state: SandboxState):
    """401 without a valid `Authorization: Token <key>`, 403 for a user without permission."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "token" or not key.strip():
        return _error(401, "Authentication credentials were not provided.", {"WWW-Authenticate": "Token"})
    with state.lock:
        username = state.tokens.get(key.strip())
    if username is None:
        return _error(401, "Invalid token.", {"WWW-Authenticate": "Token"})
    if not state.users.get(username, ("", False))[1]:
        return _error(403, "You do not have permission to perform this action.")
    return None


def _check_admin():
    """Guard the control endpoints when SANDBOX_ADMIN_TOKEN is set."""
    expected = current_app.config["SANDBOX_ADMIN_TOKEN"]
    if expected and not secrets.compare_digest(request.headers.get("X-Sandbox-Admin", ""), expected):
        return _error(403, "The sandbox control endpoints need the X-Sandbox-Admin header.")
    return None


def _page_url(page: int | None) -> str | None:
    """The absolute URL of another page of the current list, keeping the other query parameters."""
    if page is None:
        return None
    # Repeated parameters (?status=a&status=b) stay repeated in the links.
    args = request.args.to_dict(flat=False)
    args.pop("page", None)
    if page > 1:
        args["page"] = [str(page)]
    query = urlencode(args, doseq=True)
    return request.base_url + (f"?{query}" if query else "")


def _many(name: str) -> list[str]:
    """A list parameter given repeated (?status=a&status=b) or comma-separated (?status=a,b)."""
    return [part.strip() for value in request.args.getlist(name) for part in value.split(",") if part.strip()]


def _order_filters(modified_after) -> tuple[orders.OrderFilters, str]:
    """The order list's filters and ordering from the query string. Raises ValueError({field: [message]})."""
    statuses = _many("status")
    channel_texts = _many("channel")
    if not all(text.isdigit() for text in channel_texts):
        raise ValueError({"channel": ["Enter channel ids (whole numbers)."]})
    dates = {}
    for name in ("created_date__gte", "created_date__lt", "modified_date__gte"):
        if request.args.get(name):
            try:
                dates[name] = format_date(parse_date(request.args[name]))
            except ValueError:
                raise ValueError({name: ["Enter a valid date/time."]}) from None
    is_test = request.args.get("is_test", "").lower()
    if is_test not in ("", "true", "false", "1", "0"):
        raise ValueError({"is_test": ["Must be true or false."]})
    ordering = request.args.get("ordering") or "id"
    if ordering not in orders.ORDERINGS:
        raise ValueError({"ordering": [f"Order by one of {', '.join(orders.ORDERINGS)}."]})
    return orders.OrderFilters(
        statuses=frozenset(statuses) if statuses else None,
        channels=frozenset(int(c) for c in channel_texts) if channel_texts else None,
        created_gte=dates.get("created_date__gte"), created_lt=dates.get("created_date__lt"),
        modified_gt=format_date(modified_after) if modified_after else None,
        modified_gte=dates.get("modified_date__gte"),
        is_test=None if not is_test else is_test in ("true", "1")), ordering


def _register_api(app: Flask) -> None:
    """The Omnitron API routes."""

    @app.get("/api/v1/health/")
    def health():
        """Whether the sandbox is up (no auth), with the data generation so a sync can tell data changed."""
        state = sandbox_state()
        return jsonify({"status": "ok", "service": "omnitron-sandbox", "seed": state.dataset.seed,
                        "generation": state.dataset.generation})

    @app.post("/api/v1/auth/login/")
    def login():
        """Exchange a username and password for a token, as DRF's obtain_auth_token does."""
        state = sandbox_state()
        data = request.get_json(silent=True) or request.form
        username, password = str(data.get("username", "")), str(data.get("password", ""))
        if not username or not password:
            missing = {k: ["This field is required."] for k in ("username", "password") if not data.get(k)}
            return _error(400, missing)
        known = state.users.get(username)
        if known is None or not secrets.compare_digest(known[0], password):
            return _error(400, {"non_field_errors": ["Unable to log in with provided credentials."]})
        return jsonify({"key": state.token_for(username)})

    @app.get("/api/v1/<resource>/")
    def list_records(resource: str):
        """One page of a resource: {"count", "next", "previous", "results"}."""
        if resource not in RESOURCES:
            return _error(404, "Not found.")
        config = current_app.config
        page = _request_page()
        limit_raw = request.args.get("limit", "")
        # DRF ignores a limit it cannot read and uses the default page size.
        limit = int(limit_raw) if limit_raw.isdigit() and int(limit_raw) > 0 else config["SANDBOX_PAGE_SIZE"]
        limit = min(limit, config["SANDBOX_MAX_PAGE_SIZE"])
        modified_after = None
        if request.args.get("modified_date__gt"):
            try:
                modified_after = parse_date(request.args["modified_date__gt"])
            except ValueError:
                return _error(400, {"modified_date__gt": ["Enter a valid date/time."]})
        if page < 1:
            return _error(404, "Invalid page.")
        if resource == "orders":
            try:
                filters, ordering = _order_filters(modified_after)
            except ValueError as exc:
                return _error(400, exc.args[0])
            count, results = orders.query(sandbox_state().dataset, filters, ordering, (page - 1) * limit, limit)
        else:
            count, results = sandbox_state().dataset.page(resource, (page - 1) * limit, limit, modified_after)
        last_page = max(1, -(-count // limit))
        if page > last_page:
            return _error(404, "Invalid page.")
        return jsonify({"count": count, "next": _page_url(page + 1 if page < last_page else None),
                        "previous": _page_url(page - 1 if page > 1 else None), "results": results})

    @app.get("/api/v1/<resource>/<int:record_id>/")
    def show_record(resource: str, record_id: int):
        """One record by id; 404 for an unknown id."""
        if resource not in RESOURCES:
            return _error(404, "Not found.")
        record = sandbox_state().dataset.detail(resource, record_id)
        if record is None:
            return _error(404, "Not found.")
        return jsonify(record)

    @app.get(STOCK_ENGINES_PATH)
    def available_stock_engines():
        """The stock engines a product stock integration can use, and which of them need credentials."""
        return jsonify(list(STOCK_ENGINES))


def _register_stock_engines(app: Flask) -> None:
    """A fake external stock service per engine, for step 10's connection test (not part of Omnitron)."""
    engines = {e["stock_engine_type"]: e for e in STOCK_ENGINES}

    def authorize(engine_type: str):
        """404 for an unknown engine, 401 when the engine needs credentials and they are missing or wrong."""
        engine = engines.get(engine_type)
        if engine is None:
            return _error(404, f"Unknown stock engine {engine_type!r}.")
        if engine["requires_credentials"]:
            auth = request.authorization
            config = current_app.config
            if (auth is None or auth.username != config["SANDBOX_STOCK_USERNAME"]
                    or not secrets.compare_digest(auth.password or "", config["SANDBOX_STOCK_PASSWORD"])):
                return _error(401, "Invalid username or password for the stock service.",
                              {"WWW-Authenticate": 'Basic realm="stock"'})
        return None

    @app.get("/stock-engines/<engine_type>/")
    @app.get("/stock-engines/<engine_type>/health/")
    def stock_engine(engine_type: str):
        """The stock service's root: answers when the URL and credentials are right."""
        return authorize(engine_type) or jsonify({"status": "ok", **engines[engine_type]})

    @app.get("/stock-engines/<engine_type>/stocks/")
    def stock_levels(engine_type: str):
        """Stock of ?sku= at ?stock_location= (deterministic quantities)."""
        refused = authorize(engine_type)
        if refused:
            return refused
        sku = request.args.get("sku", "SKU-1")
        location = request.args.get("stock_location", "IST-KDK")
        quantity = quick_hash(len(sku) * 7919 + len(location), 9, sum(map(ord, sku + location))) % 25
        return jsonify({"count": 1, "results": [{"sku": sku, "stock_location": location, "quantity": quantity}]})


def _register_control(app: Flask) -> None:
    """The /__sandbox__/ endpoints: change data, arm faults, revoke tokens, see recent requests."""

    @app.get("/__sandbox__/faults")
    def list_faults():
        """The armed faults and how often each fired."""
        return jsonify(sandbox_state().faults.describe())

    @app.post("/__sandbox__/faults")
    def add_fault():
        """Arm a fault: {"path", "page"?, "method"?, "status"?, "delay"?, "drop"?, "times"? (null = always)}."""
        try:
            fault = sandbox_state().faults.add(fault_from_json(request.get_json(silent=True)))
        except ValueError as exc:
            return _error(400, str(exc))
        return jsonify({"id": fault.id}), 201

    @app.delete("/__sandbox__/faults")
    def clear_faults():
        """Disarm every fault."""
        sandbox_state().faults.clear()
        return "", 204

    @app.post("/__sandbox__/mutate")
    def mutate():
        """Change records between runs: {"resource", "update"?: n, "ids"?: [...], "changes"?: {...}, "add"?: n,
        "delete"?: [ids]} (deleted records leave their list until /__sandbox__/reset)."""
        data = request.get_json(silent=True) or {}
        resource = data.get("resource")
        if resource not in RESOURCES:
            return _error(400, f'"resource" must be one of {", ".join(RESOURCES)}.')
        if data.get("changes") is not None and not isinstance(data["changes"], dict):
            return _error(400, '"changes" must be an object of field -> new value.')
        try:
            result = sandbox_state().dataset.mutate(
                resource, update=int(data.get("update", 0)), ids=[int(i) for i in data.get("ids", [])],
                changes=data.get("changes"), add=int(data.get("add", 0)),
                delete=[int(i) for i in data.get("delete", [])])
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc))
        return jsonify(result)

    @app.post("/__sandbox__/reset")
    def reset():
        """Back to the generated data, no faults, no tokens, an empty request log."""
        state = sandbox_state()
        state.dataset.reset()
        state.faults.clear()
        with state.lock:
            state.tokens.clear()
        state.requests.clear()
        current_app.extensions["sandbox_cargo"].clear()
        return "", 204

    @app.delete("/__sandbox__/tokens")
    def revoke_tokens():
        """Revoke every token, as if Omnitron's tokens were rotated: clients must log in again."""
        state = sandbox_state()
        with state.lock:
            state.tokens.clear()
        return "", 204

    @app.get("/__sandbox__/requests")
    def recent_requests():
        """The last requests the sandbox received (method, path, query, auth scheme), oldest first."""
        return jsonify(list(sandbox_state().requests))

"""The Twilio provider, with the official client, against a local stub of Twilio's Messages API."""
from __future__ import annotations

import base64
import logging
import re
import socket

import pytest
from sqlalchemy import select
from stubs.twilio_server import ACCOUNT_SID, AUTH_TOKEN, twilio_stub  # noqa: F401 (fixture)

from portal.extensions import db
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.packages import commands
from portal.packages.models import Package
from portal.packages.states import State
from portal.sms import SmsError, get_provider
from portal.sms.twilio import TwilioSmsProvider

FROM_NUMBER = "+15005550006"
SERVICE_SID = "MG" + "fedcba9876543210" * 2
CUSTOMER = "+905551112233"


@pytest.fixture
def twilio_settings() -> dict:
    """TWILIO_* settings a test may override (by parametrising this fixture)."""
    return {}


UNREACHABLE = "unreachable"


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app_config(twilio_stub, twilio_settings):  # noqa: F811 (the stub fixture)
    """The portal sends SMS through Twilio, whose API lives at the stub's address (or nowhere)."""
    config = {"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
              "TWILIO_FROM_NUMBER": FROM_NUMBER, "TWILIO_API_BASE_URL": twilio_stub.url, "TWILIO_TIMEOUT_SECONDS": 3,
              **twilio_settings}
    if config["TWILIO_API_BASE_URL"] == UNREACHABLE:
        config["TWILIO_API_BASE_URL"] = f"http://127.0.0.1:{_closed_port()}"
    return config


def ready_for_pickup(make) -> Package:
    """Staff make a packed click & collect package ready for pickup; the customer is texted."""
    package = make.package(state=State.PACKED, phone=CUSTOMER)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    return package


def the_sms() -> OutboxMessage:
    """The one SMS in the outbox, as the database has it."""
    db.session.expire_all()
    return db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "sms"))


def state_of(package) -> int:
    """The package's state in the database."""
    db.session.expire_all()
    return db.session.get(Package, package.id).state


def test_the_pickup_code_goes_out_through_twilio(app, make, twilio_stub, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    package = ready_for_pickup(make)

    [request] = twilio_stub.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.form["To"] == CUSTOMER
    assert request.form["From"] == FROM_NUMBER
    assert "MessagingServiceSid" not in request.form
    body = request.form["Body"]
    code = re.search(r" is (\d{6})\.", body).group(1)
    assert package.order_number in body and package.stock_location.name in body

    message = the_sms()
    assert message.status == OutboxMessage.SENT
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.provider_id)
    assert message.body_encrypted is None
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    # The official client logs whole requests; the provider keeps it quiet, so the code stays out of logs.
    assert code not in caplog.text

    commands.run_command(db.session, package.id, slug="self-service-package-delivery", params={"otp": code},
                         user_id=None, store_ids=None)
    assert state_of(package) == State.DELIVERED


@pytest.mark.parametrize("twilio_settings", [{"TWILIO_FROM_NUMBER": "",
                                                  "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID}])
def test_a_messaging_service_sends_instead_of_a_from_number(app, make, twilio_stub):  # noqa: F811
    ready_for_pickup(make)

    [request] = twilio_stub.requests
    assert request.form["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in request.form
    assert the_sms().status == OutboxMessage.SENT


@pytest.mark.parametrize("status,error", [(400, "Twilio refused the message (400, code 21211)"),
                                          (500, "Twilio refused the message (500, code 20500)")])
def test_a_refusal_from_twilio_leaves_the_sms_failed_and_the_package_ready(app, make, twilio_stub, caplog,
                                                                           status, error):  # noqa: F811
    twilio_stub.fail_with = status
    package = ready_for_pickup(make)

    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    message = the_sms()
    assert message.status == OutboxMessage.FAILED
    assert message.last_error.startswith(error)
    assert message.body_encrypted  # kept for the retry
    assert any("not sent" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)

    twilio_stub.fail_with = None
    outbox.retry_sms(db.session, message.id)

    assert the_sms().status == OutboxMessage.SENT
    assert len(twilio_stub.requests) == 2
    assert twilio_stub.requests[0].form["Body"] == twilio_stub.requests[1].form["Body"]


@pytest.mark.parametrize("twilio_settings", [{"TWILIO_AUTH_TOKEN": "not-the-token"}])
def test_wrong_credentials_are_a_failed_sms_not_a_crash(app, make, twilio_stub):  # noqa: F811
    package = ready_for_pickup(make)

    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    message = the_sms()
    assert message.status == OutboxMessage.FAILED
    assert "401" in message.last_error


@pytest.mark.parametrize("twilio_settings", [{"TWILIO_API_BASE_URL": UNREACHABLE}])
def test_an_unreachable_twilio_is_a_failed_sms_not_a_crash(app, client, make, auth_actions):
    store = make.store()
    make.user("zeynep", stores=[store])
    auth_actions.login("zeynep")
    package = make.package(store=store, state=State.PACKED)

    response = client.post(f"/packages/{package.id}/commands/ready-for-customer-pickup",
                           headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "SMS not sent" in response.get_data(as_text=True)
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    message = the_sms()
    assert message.status == OutboxMessage.FAILED
    assert message.last_error.startswith("Twilio could not be reached")


@pytest.mark.parametrize("twilio_settings", [{"TWILIO_FROM_NUMBER": "", "TWILIO_MESSAGING_SERVICE_SID": ""}])
def test_twilio_without_a_sender_fails_the_sms_with_a_clear_error(app, make, twilio_stub):  # noqa: F811
    package = ready_for_pickup(make)

    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    assert "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID" in the_sms().last_error
    assert twilio_stub.requests == []


@pytest.mark.parametrize("kwargs,message", [
    ({"account_sid": "", "auth_token": AUTH_TOKEN, "from_number": FROM_NUMBER}, "TWILIO_ACCOUNT_SID"),
    ({"account_sid": ACCOUNT_SID, "auth_token": "", "from_number": FROM_NUMBER}, "TWILIO_AUTH_TOKEN"),
    ({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}, "TWILIO_FROM_NUMBER"),
])
def test_the_provider_refuses_incomplete_settings(kwargs, message):
    with pytest.raises(SmsError, match=message):
        TwilioSmsProvider(kwargs.pop("account_sid"), kwargs.pop("auth_token"), **kwargs)


def test_the_configured_provider_is_twilio_and_returns_the_message_sid(app, twilio_stub):  # noqa: F811
    provider = get_provider(app)

    sid = provider.send(CUSTOMER, "Hello from the portal")

    assert isinstance(provider, TwilioSmsProvider)
    assert re.fullmatch(r"SM0{31}1", sid)
    assert twilio_stub.requests[-1].form == {"To": CUSTOMER, "From": FROM_NUMBER, "Body": "Hello from the portal"}

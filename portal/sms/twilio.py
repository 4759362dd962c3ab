"""The Twilio provider, using the official client."""
from __future__ import annotations

import logging

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from portal.sms.base import SmsError

# The client logs whole requests at INFO, message bodies (and so pickup codes) included.
_quiet_logger = logging.getLogger("portal.sms.twilio.http")
_quiet_logger.setLevel(logging.WARNING)


class TwilioSmsProvider:
    """Sends SMS through Twilio's Messages API, from a number or a messaging service."""

    def __init__(self, account_sid: str, auth_token: str, *, from_number: str = "",
                 messaging_service_sid: str = "", api_base_url: str = "", timeout: float = 10):
        if not account_sid or not auth_token:
            raise SmsError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set for SMS_PROVIDER=twilio.")
        if not from_number and not messaging_service_sid:
            raise SmsError("Set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID for SMS_PROVIDER=twilio.")
        http_client = TwilioHttpClient(timeout=timeout, logger=_quiet_logger)
        self.client = Client(account_sid, auth_token, http_client=http_client)
        if api_base_url:
            # The client has no base-URL option; its API domain reads base_url for every request.
            self.client.api.base_url = api_base_url.rstrip("/")
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid

    @classmethod
    def from_config(cls, config) -> TwilioSmsProvider:
        """Build the provider from the TWILIO_* settings."""
        return cls(
            config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
            from_number=config["TWILIO_FROM_NUMBER"],
            messaging_service_sid=config["TWILIO_MESSAGING_SERVICE_SID"],
            api_base_url=config["TWILIO_API_BASE_URL"],
            timeout=config["TWILIO_TIMEOUT_SECONDS"],
        )

    def send(self, to: str, body: str) -> str:
        """Create the message; returns its SID. Raises SmsError when Twilio refuses or cannot be reached."""
        kwargs = {"to": to, "body": body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            raise SmsError(f"Twilio refused the message ({exc.status}, code {exc.code}): {exc.msg}") from exc
        except (TwilioException, OSError) as exc:
            raise SmsError(f"Twilio could not be reached: {exc.__class__.__name__}") from exc
        except Exception as exc:  # requests' errors are not OSError subclasses in every case
            raise SmsError(f"Twilio could not be reached: {exc.__class__.__name__}") from exc
        return message.sid

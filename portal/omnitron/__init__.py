"""The Omnitron adapter: an HTTP client with timeouts, retries, clear errors and streamed pagination."""
from portal.omnitron.client import ADDRESS_PATHS, CHANNELS_PATH, STOCK_LOCATIONS_PATH, LoginResult, OmnitronClient, Page
from portal.omnitron.errors import (
    OmnitronAuthError,
    OmnitronBadResponse,
    OmnitronError,
    OmnitronForbidden,
    OmnitronNotAllowed,
    OmnitronNotFound,
    OmnitronServerError,
    OmnitronTimeout,
    OmnitronUnreachable,
)

__all__ = [
    "ADDRESS_PATHS", "CHANNELS_PATH", "STOCK_LOCATIONS_PATH", "LoginResult", "OmnitronClient", "Page",
    "OmnitronAuthError", "OmnitronBadResponse", "OmnitronError", "OmnitronForbidden", "OmnitronNotAllowed", "OmnitronNotFound",
    "OmnitronServerError", "OmnitronTimeout", "OmnitronUnreachable",
]

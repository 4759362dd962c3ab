"""Key rotation: re-encrypt every stored secret with the newest key in ENCRYPTION_KEYS."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.cargo.models import CargoCompany
from portal.integrations.models import StockIntegration
from portal.outbox.models import OutboxMessage
from portal.settings import service as settings
from portal.webhooks.models import WebhookSubscription


def rotate_all(session: Session, *, user_id: int | None = None) -> dict[str, int]:
    """Re-encrypt secrets in settings, stock integrations, cargo companies and unsent SMS; one transaction.

    Raises ValueError when a stored secret cannot be read with any configured key (nothing is changed).
    """
    fernet = crypto.fernet()

    def rotate(token: str) -> str:
        """Re-encrypt one token, or say which key is missing."""
        try:
            return fernet.rotate(token.encode()).decode()
        except Exception as exc:  # cryptography raises InvalidToken
            raise ValueError("a stored secret cannot be decrypted with the configured ENCRYPTION_KEYS; "
                             "keep the old key in the list until rotation has run") from exc

    try:
        counts = {"settings": settings.rotate_secrets(session), "stock_integrations": 0, "cargo_companies": 0,
                  "webhook_subscriptions": 0, "outbox": 0}
        for integration in session.scalars(select(StockIntegration).where(StockIntegration.password_encrypted != "")):
            integration.password_encrypted = rotate(integration.password_encrypted)
            counts["stock_integrations"] += 1
        for company in session.scalars(select(CargoCompany).where(CargoCompany.conf_encrypted != "")):
            company.conf_encrypted = rotate(company.conf_encrypted)
            counts["cargo_companies"] += 1
        for subscription in session.scalars(select(WebhookSubscription)):
            subscription.secret_encrypted = rotate(subscription.secret_encrypted)
            counts["webhook_subscriptions"] += 1
        for message in session.scalars(select(OutboxMessage).where(OutboxMessage.body_encrypted.is_not(None))):
            message.body_encrypted = rotate(message.body_encrypted)
            counts["outbox"] += 1
    except ValueError:
        # Secrets re-encrypted before the unreadable one are pending (maybe flushed): drop them all.
        session.rollback()
        raise
    settings.audit(session, "ENCRYPTION_KEYS", user_id=user_id, area="encryption", action="rotate")
    session.commit()
    return counts

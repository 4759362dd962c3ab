"""Key rotation: re-encrypt every stored secret with the newest key in ENCRYPTION_KEYS.

The settings' own secrets are rotated here; the other encrypted columns (stock integrations, cargo
companies, webhook subscriptions, the outbox) are registered at start-up by portal.wiring, so the
settings package does not depend on the packages that keep secrets (they depend on settings).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from portal import crypto
from portal.settings import service as settings

# name in the counts -> a mapped column holding crypto tokens ("" or NULL when there is none)
ENCRYPTED_COLUMNS: dict[str, InstrumentedAttribute] = {}


def register_encrypted_column(name: str, column: InstrumentedAttribute) -> None:
    """Rotate this column too, counted under name; registering a name again replaces its column."""
    ENCRYPTED_COLUMNS[name] = column


def rotate_all(session: Session, *, user_id: int | None = None) -> dict[str, int]:
    """Re-encrypt secrets in settings, then in every registered column (in registration order); one transaction.

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
        counts = {"settings": settings.rotate_secrets(session)}
        for name, column in ENCRYPTED_COLUMNS.items():
            counts[name] = 0
            model, attribute = column.class_, column.key
            for row in session.scalars(select(model).where(column.is_not(None), column != "")):
                setattr(row, attribute, rotate(getattr(row, attribute)))
                counts[name] += 1
    except ValueError:
        # Secrets re-encrypted before the unreadable one are pending (maybe flushed): drop them all.
        session.rollback()
        raise
    settings.audit(session, "ENCRYPTION_KEYS", user_id=user_id, area="encryption", action="rotate")
    session.commit()
    return counts

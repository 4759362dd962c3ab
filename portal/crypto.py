"""Encryption at rest (Fernet, with key rotation) and keyed hashing for codes."""
from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


def _keys_from_config(config) -> list[bytes]:
    """Return the Fernet keys from ENCRYPTION_KEYS, or one derived from SECRET_KEY in development."""
    raw = config.get("ENCRYPTION_KEYS", "")
    keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
    if keys:
        return keys
    digest = hashlib.sha256(("portal-encryption:" + config["SECRET_KEY"]).encode()).digest()
    return [base64.urlsafe_b64encode(digest)]


def fernet(config=None) -> MultiFernet:
    """A MultiFernet that encrypts with the newest key and decrypts with any configured key."""
    config = config if config is not None else current_app.config
    return MultiFernet([Fernet(k) for k in _keys_from_config(config)])


def encrypt(text: str) -> str:
    """Encrypt text for storage."""
    return fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a stored value; raises ValueError when no configured key can read it."""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("stored value cannot be decrypted with the configured ENCRYPTION_KEYS") from exc


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA256 of value under a key derived from SECRET_KEY and the purpose, as hex."""
    key = hashlib.sha256((purpose + ":" + current_app.config["SECRET_KEY"]).encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def generate_key() -> str:
    """A new Fernet key, for ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()

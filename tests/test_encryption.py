"""Secrets at rest: the encryption round trip, no plaintext in the database or the audit, and key rotation
with `flask rotate-encryption-key` (including a key list that cannot read a stored secret).
"""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from portal import crypto
from portal.cargo.models import CargoCompany
from portal.extensions import db
from portal.settings import service as settings
from portal.settings.models import SettingChange

OMNITRON_PASSWORD = "Gizli-Şifre-2026!"
MAPS_KEY = "AIzaSy-brand-maps-key-77"
SECRETS = {settings.OMNITRON_CLIENT_SETTINGS: OMNITRON_PASSWORD, settings.GEOLOCATION_DISCOVERY: MAPS_KEY}
K0, K1, K2 = (Fernet.generate_key().decode() for _ in range(3))


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("root", role="admin")
    auth_actions.login("root")
    return user


def _use_keys(app, keys: str) -> None:
    """Configure ENCRYPTION_KEYS (newest first), as an operator would in the environment."""
    app.config["ENCRYPTION_KEYS"] = keys


def _save_secrets(client) -> None:
    """Save both secret settings through the wizard's forms, as an admin does."""
    assert client.post("/setup/omnitron-credentials",
                       data={"username": "oms.application", "password": OMNITRON_PASSWORD}).status_code == 302
    assert client.post("/setup/geolocation", data={"provider": "google", "api_key": MAPS_KEY}).status_code == 302


def _raw_settings() -> dict[str, str]:
    """Each setting's row as the database holds it, read as text on a connection of its own."""
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT key, CAST(json_value AS TEXT) FROM application_settings"))
        return {key: value for key, value in rows}


def _secret(key: str) -> str | None:
    """A setting's secret, decrypted with the keys configured now."""
    db.session.expire_all()
    path = ("auth", "password") if key == settings.OMNITRON_CLIENT_SETTINGS else ("api_key",)
    return settings.get_secret(db.session, key, path)


def test_encrypt_then_decrypt_gives_the_text_back(app):
    """A token is not the text, two tokens of one text differ, and both decrypt to it."""
    first, second = crypto.encrypt(OMNITRON_PASSWORD), crypto.encrypt(OMNITRON_PASSWORD)

    assert OMNITRON_PASSWORD not in first
    assert first != second
    assert crypto.decrypt(first) == crypto.decrypt(second) == OMNITRON_PASSWORD


def test_a_token_from_another_key_is_refused_clearly(app):
    """Decrypting with keys that never encrypted the value raises ValueError naming ENCRYPTION_KEYS."""
    _use_keys(app, K1)
    token = crypto.encrypt(MAPS_KEY)
    _use_keys(app, K2)

    with pytest.raises(ValueError, match="ENCRYPTION_KEYS"):
        crypto.decrypt(token)


def test_secret_settings_round_trip_and_their_rows_never_hold_the_plaintext(client, admin, app):
    """Both secrets come back decrypted, but no database row contains them."""
    _use_keys(app, K1)
    _save_secrets(client)

    assert _secret(settings.OMNITRON_CLIENT_SETTINGS) == OMNITRON_PASSWORD
    assert _secret(settings.GEOLOCATION_DISCOVERY) == MAPS_KEY
    raw = _raw_settings()
    for key, plaintext in SECRETS.items():
        assert settings.ENCRYPTED in raw[key]
        assert all(plaintext not in row for row in raw.values())


def test_rotation_re_encrypts_every_secret_with_the_new_key(client, admin, app, runner):
    """Saved with k1; ENCRYPTION_KEYS="k2,k1" and the command; afterwards k2 alone reads every secret."""
    _use_keys(app, K1)
    _save_secrets(client)
    before = _raw_settings()

    _use_keys(app, f"{K2},{K1}")
    result = runner.invoke(args=["rotate-encryption-key"])

    assert result.exit_code == 0, result.output
    assert "Re-encrypted: settings 2" in result.output
    after = _raw_settings()
    assert all(after[key] != before[key] for key in SECRETS)
    _use_keys(app, K2)
    assert _secret(settings.OMNITRON_CLIENT_SETTINGS) == OMNITRON_PASSWORD
    assert _secret(settings.GEOLOCATION_DISCOVERY) == MAPS_KEY
    _use_keys(app, K1)
    with pytest.raises(ValueError):
        _secret(settings.GEOLOCATION_DISCOVERY)
    rotation = db.session.scalar(select(SettingChange).where(SettingChange.action == "rotate"))
    assert (rotation.area, rotation.key) == ("encryption", "ENCRYPTION_KEYS")


def test_rotation_with_keys_that_cannot_read_a_setting_fails_and_changes_nothing(client, admin, app, runner):
    """One secret under k1, another under a key since dropped: the command names the problem, writes nothing."""
    _use_keys(app, K1)
    client.post("/setup/geolocation", data={"provider": "google", "api_key": MAPS_KEY})
    _use_keys(app, K0)
    client.post("/setup/omnitron-credentials", data={"username": "oms.application", "password": OMNITRON_PASSWORD})
    before = _raw_settings()

    _use_keys(app, f"{K2},{K1}")
    result = runner.invoke(args=["rotate-encryption-key"])

    assert result.exit_code == 1
    assert ("Error: the secret in OMNITRON_CLIENT_SETTINGS cannot be decrypted with the configured "
            "ENCRYPTION_KEYS; keep the old key in the list until rotation has run") in result.output
    assert "Traceback" not in result.output
    assert _raw_settings() == before
    assert db.session.scalar(select(SettingChange).where(SettingChange.action == "rotate")) is None
    _use_keys(app, K1)
    assert _secret(settings.GEOLOCATION_DISCOVERY) == MAPS_KEY


def test_a_later_unreadable_secret_also_rolls_back_the_settings_already_rotated(client, admin, app, runner):
    """Settings rotate first; a cargo company's unreadable credentials still leave every row as it was."""
    _use_keys(app, K0)
    db.session.add(CargoCompany(name="Old cargo", erp_code="old-cargo", shipping_company="yurtici",
                                conf_encrypted=crypto.encrypt('{"password": "cargo-pass"}')))
    db.session.commit()
    _use_keys(app, K1)
    _save_secrets(client)
    before = _raw_settings()

    _use_keys(app, f"{K2},{K1}")
    result = runner.invoke(args=["rotate-encryption-key"])

    assert result.exit_code == 1
    assert "cannot be decrypted with the configured ENCRYPTION_KEYS" in result.output
    assert _raw_settings() == before
    _use_keys(app, K1)
    assert _secret(settings.OMNITRON_CLIENT_SETTINGS) == OMNITRON_PASSWORD


def test_audit_rows_name_the_key_and_the_user_but_never_the_secret(client, admin, app, runner):
    """Every column of every audit row is searched for the secrets; who and which key are there."""
    _use_keys(app, K1)
    _save_secrets(client)
    client.post("/setup/omnitron-credentials", data={"username": "oms.application", "password": "Changed-Pass-3"})
    _use_keys(app, f"{K2},{K1}")
    assert runner.invoke(args=["rotate-encryption-key"]).exit_code == 0

    table = SettingChange.__table__
    with db.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]

    assert [(r["key"], r["user_id"]) for r in rows] == [
        (settings.OMNITRON_CLIENT_SETTINGS, admin.id), (settings.GEOLOCATION_DISCOVERY, admin.id),
        (settings.OMNITRON_CLIENT_SETTINGS, admin.id), ("ENCRYPTION_KEYS", None)]
    assert all(r["created_at"] is not None for r in rows)
    for row in rows:
        for column, value in row.items():
            for secret in (OMNITRON_PASSWORD, MAPS_KEY, "Changed-Pass-3", K1, K2):
                assert secret not in str(value), f"{secret!r} found in setting_changes.{column}"


@pytest.mark.parametrize("app_config", [{"WEBHOOK_ALLOW_PRIVATE_TARGETS": True}])
def test_rotation_re_encrypts_webhook_secrets_so_deliveries_keep_signing(app, admin, runner):
    """A subscription's signing secret survives the rotation and dropping the old key."""
    from portal.webhooks import service as webhooks

    _use_keys(app, K1)
    subscription, secret = webhooks.create_subscription(
        db.session, event_type="*", target_url="http://127.0.0.1:9/hook", user_id=admin.id)

    _use_keys(app, f"{K2},{K1}")
    result = runner.invoke(args=["rotate-encryption-key"])

    assert result.exit_code == 0, result.output
    assert "webhook_subscriptions 1" in result.output
    _use_keys(app, K2)
    db.session.expire_all()
    assert webhooks.secret_of(db.session.get(type(subscription), subscription.id)) == secret


def test_every_encrypted_column_is_rotated(app):
    """A table that keeps a secret (a column named *_encrypted) must be registered with key rotation (portal.wiring)."""
    from portal.settings import rotation

    encrypted = {(table.name, column.name) for table in db.metadata.tables.values() for column in table.columns
                 if column.name.endswith("_encrypted")}
    rotated = {(column.class_.__table__.name, column.key) for column in rotation.ENCRYPTED_COLUMNS.values()}

    assert encrypted
    assert encrypted == rotated

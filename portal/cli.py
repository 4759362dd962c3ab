"""Flask CLI commands: seed-demo, create-user, create-api-token, outbox-retry, store-language."""
from __future__ import annotations

import click
from flask import Flask

from portal.errors import DomainError
from portal.extensions import db


def register_cli(app: Flask) -> None:
    """Add the portal's commands to `flask`."""

    @app.cli.command("seed-demo")
    @click.option("--packages", default=200, show_default=True, help="How many demo packages to create.")
    def seed_demo_command(packages: int):
        """Create demo stores, users and packages (idempotent), and print the demo logins."""
        from portal.seed import seed_demo

        logins = seed_demo(db.session, packages)
        click.echo("\nDemo logins (username / password / role):")
        for username, password, role in logins:
            click.echo(f"  {username:<10} {password:<18} {role}")

    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--role", type=click.Choice(["admin", "brand_manager", "staff"]), required=True)
    @click.option("--store", "stores", multiple=True, help="ERP code of a store (repeat for several).")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    def create_user_command(username: str, role: str, stores: tuple[str, ...], password: str):
        """Create a user with a role (staff need --store ERP_CODE)."""
        from portal.accounts import auth

        try:
            user = auth.create_user(db.session, username, password, role, list(stores))
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"Created {user.role} {user.username}.")

    @app.cli.command("create-api-token")
    @click.argument("username")
    def create_api_token_command(username: str):
        """Create an API token for a user and print it once."""
        from sqlalchemy import select

        from portal.accounts import auth
        from portal.accounts.models import User

        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.ClickException(f"No user {username!r}.")
        key = auth.create_api_token(db.session, user)
        click.echo(key)

    @app.cli.command("rotate-encryption-key")
    def rotate_encryption_key_command():
        """Re-encrypt every stored secret with the first key of ENCRYPTION_KEYS (keep old keys listed after it)."""
        from portal.settings.rotation import rotate_all

        try:
            counts = rotate_all(db.session)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo("Re-encrypted: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

    @app.cli.command("generate-encryption-key")
    def generate_encryption_key_command():
        """Print a new key for ENCRYPTION_KEYS."""
        from portal.crypto import generate_key

        click.echo(generate_key())

    @app.cli.command("outbox-retry")
    def outbox_retry_command():
        """Send every SMS that is pending or failed and due for a retry."""
        from portal.outbox import service as outbox

        messages = outbox.pending_sms(db.session)
        for message in messages:
            outbox.deliver_sms(db.session, message.id)
        click.echo(f"Tried {len(messages)} message(s).")

    @app.cli.command("store-language")
    @click.argument("erp_code")
    @click.option("--language", help='Language of its customers\' SMS when the order names none ("tr", "en"; "" '
                                     "for CUSTOMER_LANGUAGE).")
    @click.option("--timezone", help="Time zone its pages show times in, e.g. Europe/Istanbul.")
    def store_language_command(erp_code: str, language: str | None, timezone: str | None):
        """Show or change a store's customer language and time zone."""
        from portal.stores.language import set_store_language

        try:
            store = set_store_language(db.session, erp_code, language=language, timezone=timezone)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"{store.erp_code}: language {store.language or '(CUSTOMER_LANGUAGE)'}, time zone {store.timezone}")

"""Forms of the auth screens."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from portal.i18n import LANGUAGE_NAMES


class LoginForm(FlaskForm):
    """Username and password."""

    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class TokenForm(FlaskForm):
    """Create a new API token (no fields: the CSRF token is the point)."""


class LanguageForm(FlaskForm):
    """The language the portal is shown in for this user; empty follows the browser."""

    language = SelectField(_l("Language"), choices=[], validate_choice=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.language.choices = [("", _l("The browser's language"))] + list(LANGUAGE_NAMES.items())

"""Routes: login, logout, profile."""
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from portal.accounts import auth
from portal.blueprints.auth import bp
from portal.blueprints.auth.forms import LanguageForm, LoginForm, TokenForm
from portal.errors import DomainError
from portal.extensions import db, limiter


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after login."""
    # Browsers read a backslash as a slash, so "/\\evil.com" would leave the site.
    if (target and urlsplit(target).netloc == "" and target.startswith("/") and not target.startswith("//")
            and "\\" not in target):
        return target
    return url_for("packages.index")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def login():
    """Show the login form and log the user in."""
    if current_user.is_authenticated:
        return redirect(url_for("packages.index"))
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        try:
            # validate_on_submit() passed DataRequired, so both are filled in.
            done = auth.log_in(db.session, form.username.data or "", form.password.data or "",
                               request.cookies.get(auth.DEVICE_COOKIE))
        except DomainError as exc:
            error, status = exc.message, 401
        else:
            user, key = done.user, done.session_key
            # A fresh session: nothing from before the login (a CSRF token someone planted with their own
            # cookie, say) carries over into the logged-in one.
            session.clear()
            # Flask-WTF also keeps this request's token in g; it belonged to the old session.
            g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
            login_user(user)
            session[auth.SESSION_KEY] = key
            answer = redirect(_safe_next(request.args.get("next")))
            if done.device_key:  # this tablet's next login checks the password without Argon2id
                answer.set_cookie(auth.DEVICE_COOKIE, done.device_key, path=url_for("auth.login"),
                                  max_age=current_app.config["LOGIN_DEVICE_DAYS"] * 86400, httponly=True,
                                  secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Strict")
            return answer
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/logout")
@login_required
def logout():
    """Log out: the session ends on the server too, so a copy of the cookie stops working."""
    auth.end_login_session(db.session, session.pop(auth.SESSION_KEY, None))
    logout_user()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    """The user's profile: role, stores and API tokens; POST creates a token shown once."""
    form = TokenForm()
    new_key = None
    if form.validate_on_submit():
        new_key = auth.create_api_token(db.session, current_user)
    language_form = LanguageForm(formdata=None, language=current_user.language or "")
    return render_template("auth/profile.html", form=form, new_key=new_key, language_form=language_form,
                           tokens=sorted(current_user.api_tokens, key=lambda t: t.id, reverse=True))


@bp.post("/profile/language")
@login_required
def set_language():
    """Save the language the user chose (empty: follow the browser); the next page is shown in it."""
    form = LanguageForm()
    if form.validate_on_submit():
        auth.set_language(db.session, current_user, form.language.data or "")
        flash(_("Language saved."), "success")
    else:
        flash(_("Choose a language from the list."), "error")
    return redirect(url_for("auth.profile"))


@bp.post("/profile/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    """Revoke one of the user's API tokens."""
    form = TokenForm()
    if form.validate_on_submit():
        try:
            auth.revoke_api_token(db.session, current_user, token_id)
            flash(_("The token was revoked."), "success")
        except DomainError as exc:
            flash(exc.message, "error")
    return redirect(url_for("auth.profile"))

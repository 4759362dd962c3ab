"""Guard: no bare user-visible string in the covered templates and Python modules.

Templates: text between tags and the user-visible attributes (title, placeholder, aria-label, alt, hx-confirm,
data-label, the value of a button) must come from `{{ _("...") }}`; quoted prose inside `{{ }}` / `{% %}` must be
the first argument of `_()`. Python: the messages of flash() and toasts, of domain errors (every DomainError
subclass), WTForms labels, descriptions and validator messages, and values assigned to message/label/error-like
names must be wrapped in `_()`, `_l()`, `N_()` (or another gettext function). What is not prose is ignored:
whitespace, punctuation, numbers, Jinja expressions, code-like tokens (identifiers, paths, URLs, header names).

COVERED lists the checked paths; it grows until it is simply ["portal"] (NOT_COVERED then names the few files
whose texts never reach a person, such as API documentation).
"""
from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import Environment

ROOT = Path(__file__).resolve().parents[1]

# Paths (files or folders, relative to the checkout) whose strings must all be marked for translation.
COVERED = [
    "portal/templates/base.html",
    "portal/templates/_macros.html",
    "portal/templates/error.html",
    "portal/templates/_error_fragment.html",
    "portal/templates/auth",
    "portal/templates/packages",
    "portal/templates/settings",
    "portal/templates/webhooks",
    "portal/blueprints/auth",
    "portal/blueprints/packages",
    "portal/blueprints/settings",
    "portal/blueprints/webhooks",
    "portal/packages",
    "portal/otp",
    "portal/accounts",
    "portal/stores",
    "portal/errors.py",
    "portal/webhooks",
    "portal/static/portal.js",
    "portal/runs",
    "portal/templates/runs",
    "portal/templates/setup/_sync_status.html",
    "portal/templates/setup/_order_import.html",
    "portal/templates/setup/_job_runs.html",
    "portal/scenarios",
    "portal/cargo",
    "portal/integrations",
    "portal/geolocation",
    "portal/omnitron",
]
# Files inside COVERED whose texts never reach a screen (an OpenAPI document's descriptions, say): skipped.
NOT_COVERED: list[str] = [
    "portal/cli.py",  # `flask` command output and option help, for operators
    "portal/seed.py",  # demo data
]

GETTEXT_NAMES = {"_", "_l", "N_", "gettext", "lazy_gettext", "ngettext", "lazy_ngettext", "pgettext", "npgettext"}
VISIBLE_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "hx-confirm", "hx-prompt", "data-label",
                      "data-confirm", "label", "aria-description", "aria-roledescription"}
VISIBLE_ATTRIBUTE_PREFIXES = ("data-text-",)  # texts portal.js shows
BUTTON_INPUT_TYPES = {"submit", "button", "reset"}
SKIPPED_ELEMENTS = {"code", "script", "style", "pre", "kbd", "samp"}
# A Jinja expression or statement, replaced by this marker (not prose) before the HTML is read.
JINJA = "\x00"
JINJA_CONSTRUCT = re.compile(r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
PUNCTUATION = " \t\r\n\x00.,;:!?()[]{}\"'`«»“”‘’…·•←→↑↓–—-/|*+=%&#<>"


def _is_code_like(word: str) -> bool:
    """A token that reads as code, not as a word: identifiers, paths, URLs, header names, entities, numbers."""
    if not re.search(r"[^\W\d_]", word):
        return True  # no letter at all: numbers, punctuation
    if re.search(r"[_/@=<>\\]|://|\w\.\w", word):
        return True  # snake_case, paths, URLs, e-mail addresses, dotted names
    if re.fullmatch(r"&[#\w]+;", word):
        return True  # an HTML entity such as &amp;
    return bool(re.fullmatch(r"(?:[A-Z][A-Za-z0-9]*-)+[A-Z][A-Za-z0-9]*", word))  # header names: X-Brand-Token


def is_prose(text: str) -> bool:
    """Whether the text holds at least one word a person reads (after dropping code-like tokens)."""
    for raw in text.split():
        word = raw.strip(PUNCTUATION)
        # A word glued to an expression ({{ name }}-error, chip-{{ kind }}) is built by code.
        if word and JINJA not in raw and not _is_code_like(word):
            return True
    return False


def _covered_files(suffix: str) -> list[Path]:
    """Every covered file with the given suffix."""
    files: set[Path] = set()
    for entry in COVERED:
        path = ROOT / entry
        if path.is_dir():
            files.update(p for p in path.rglob(f"*{suffix}") if "__pycache__" not in p.parts)
        elif path.suffix == suffix:
            files.add(path)
    skipped = {ROOT / entry for entry in NOT_COVERED}
    return sorted(f for f in files if f not in skipped and not skipped.intersection(f.parents))


# ---------------------------------------------------------------- templates


class _VisibleText(HTMLParser):
    """Collects the bare text nodes and user-visible attribute values of a page (Jinja already blanked)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.found: list[tuple[int, str]] = []
        self._skip_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIPPED_ELEMENTS:
            self._skip_depth += 1
        names = dict(attrs)
        for name, value in attrs:
            if value is None:
                continue
            visible = name in VISIBLE_ATTRIBUTES or name.startswith(VISIBLE_ATTRIBUTE_PREFIXES) or (
                name == "value" and tag == "input" and (names.get("type") or "").lower() in BUTTON_INPUT_TYPES)
            if visible and is_prose(value):
                self.found.append((self.getpos()[0], f'{name}="{value.strip().replace(JINJA, "{{…}}")}"'))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in SKIPPED_ELEMENTS:
            self._skip_depth -= 1

    def handle_endtag(self, tag):
        if tag in SKIPPED_ELEMENTS and self._skip_depth:
            self._skip_depth -= 1

    def handle_data(self, data):
        if not self._skip_depth and is_prose(data):
            self.found.append((self.getpos()[0], " ".join(data.replace(JINJA, "{{…}}").split())))


def _quoted_prose_outside_gettext(source: str) -> list[tuple[int, str]]:
    """Quoted prose inside `{{ }}` and `{% %}` that is not the first argument of a gettext call.

    Prose here means a quoted text that starts with a capital letter (labels such as 'Yes', 'Never',
    'Confirm'); lower-case literals are CSS classes, state names and other values."""
    found = []
    calls: list[str | None] = []  # the called name of each open parenthesis
    previous = None
    for line, kind, value in Environment(extensions=["jinja2.ext.i18n"]).lex(source):
        if kind == "whitespace":
            continue
        if kind == "operator" and value == "(":
            calls.append(previous[2] if previous and previous[1] == "name" else None)
        elif kind == "operator" and value == ")" and calls:
            calls.pop()
        elif kind == "string" and not (calls and calls[-1] in GETTEXT_NAMES):
            text = value[1:-1]  # the lexer keeps the quotes
            if re.match(r"\s*[A-Z]", text) and is_prose(text):
                found.append((line, value))
        previous = (line, kind, value)
    return found


def bare_template_strings(path: Path) -> list[str]:
    """The bare user-visible strings of one template, as "file:line: text"."""
    source = path.read_text(encoding="utf-8")
    # Each Jinja construct becomes the marker plus the newlines it spanned, so line numbers stay right.
    # An expression stands for a value (glued to a word it makes that word code); a statement or comment for nothing.
    blanked = JINJA_CONSTRUCT.sub(
        lambda m: (JINJA if m.group(0).startswith("{{") else " ") + "\n" * m.group(0).count("\n"), source)
    parser = _VisibleText()
    parser.feed(blanked)
    parser.close()
    relative = path.relative_to(ROOT)
    found = [f"{relative}:{line}: {text}" for line, text in parser.found]
    found += [f"{relative}:{line}: {text}" for line, text in _quoted_prose_outside_gettext(source)]
    return found


# ---------------------------------------------------------------- Python


def _domain_error_names() -> set[str]:
    """The names of every DomainError subclass the covered code can raise."""
    import portal.models  # noqa: F401  (imports the domain modules)
    from portal.errors import DomainError

    names, todo = set(), [DomainError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


MESSAGE_CALLS = {"flash", "with_toast", "toast", "abort", "refuse", "reject"}
MESSAGE_KEYWORDS = {"message", "label", "description", "error", "panel_error", "title", "help", "toast", "hint"}
MESSAGE_NAME = re.compile(r"(message|error|label|title|toast|hint|help_text|reason|prompt|description)s?$", re.IGNORECASE)


def _callee(node: ast.Call) -> str:
    """The called name: `flash` for flash(...) and for module.flash(...)."""
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return ""


def _bare(node: ast.AST | None) -> list[ast.AST]:
    """The string nodes in an expression that reach the user unmarked."""
    if node is None:
        return []
    if isinstance(node, ast.Constant):
        # One lower-case word ("error", "success") is a value for code, such as a flash category.
        if not isinstance(node.value, str) or re.fullmatch(r"[a-z_]+", node.value.strip()):
            return []
        return [node] if is_prose(node.value) else []
    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        return [node] if is_prose(text) else []
    if isinstance(node, ast.Call):
        return []  # gettext calls are fine; other calls build their own text and are checked where they do
    if isinstance(node, ast.IfExp):
        return _bare(node.body) + _bare(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [bad for value in node.values for bad in _bare(value)]
    if isinstance(node, ast.BinOp):
        return _bare(node.left) + _bare(node.right)
    if isinstance(node, ast.Dict):
        return [bad for value in node.values for bad in _bare(value)]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [bad for value in node.elts for bad in _bare(value)]
    return []


def _checked_expressions(tree: ast.AST, error_names: set[str]) -> list[ast.AST]:
    """The expressions whose strings a person reads."""
    checked: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _callee(node)
            if name in GETTEXT_NAMES:
                continue
            if name in MESSAGE_CALLS:
                checked += node.args[1:2] if name in ("with_toast", "abort") else node.args[:1]
                checked += [kw.value for kw in node.keywords if kw.arg in MESSAGE_KEYWORDS | {"description"}]
            elif name in error_names:
                checked += node.args[:1]
                checked += [kw.value for kw in node.keywords if kw.arg == "message"]
            elif name.endswith("Field"):
                checked += node.args[:1]
                checked += [kw.value for kw in node.keywords if kw.arg in ("label", "description")]
            else:
                checked += [kw.value for kw in node.keywords if kw.arg in MESSAGE_KEYWORDS]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                pairs = [(target, node.value)]
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = list(zip(target.elts, node.value.elts, strict=False))  # message, level = "...", "error"
                for one, value in pairs:
                    name = one.id if isinstance(one, ast.Name) else getattr(one, "attr", "")
                    if name and MESSAGE_NAME.search(name):
                        checked.append(value)
    return checked


def bare_python_strings(path: Path, error_names: set[str]) -> list[str]:
    """The bare user-visible strings of one module, as "file:line: text"."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    relative = path.relative_to(ROOT)
    found = []
    for expression in _checked_expressions(tree, error_names):
        for node in _bare(expression):
            found.append(f"{relative}:{node.lineno}: {ast.unparse(node)[:100]}")
    return sorted(set(found), key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


# ---------------------------------------------------------------- scripts

JS_STRING = re.compile(r"""(["'])((?:\\.|(?!\1).)*)\1""")


def bare_script_strings(path: Path) -> list[str]:
    """Quoted prose in a script: its texts must come from the page (data-text-* attributes rendered with _())."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("//"):
            continue
        for match in JS_STRING.finditer(line):
            text = match.group(2)
            if re.match(r"\s*[A-Z][a-z]*\s+\S", text) and is_prose(text):
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)}")
    return found


# ---------------------------------------------------------------- the guard


def test_covered_paths_exist():
    """A renamed or moved path must not silently drop out of the guard."""
    missing = [entry for entry in COVERED + NOT_COVERED if not (ROOT / entry).exists()]
    assert not missing, f"COVERED names paths that do not exist: {missing}"


def test_covered_templates_have_no_bare_strings():
    """Every user-visible text of the covered templates goes through _()."""
    found = [bad for path in _covered_files(".html") for bad in bare_template_strings(path)]
    assert not found, "Bare user-visible strings (wrap them in {{ _(\"...\") }}):\n" + "\n".join(found)


def test_covered_scripts_have_no_bare_strings():
    """portal.js shows only texts the page rendered through _()."""
    found = [bad for path in _covered_files(".js") for bad in bare_script_strings(path)]
    assert not found, "Bare user-visible strings in scripts (render them as data-text-* with _()):\n" + "\n".join(found)


def test_covered_python_has_no_bare_strings():
    """Every user-visible message of the covered modules goes through _(), _l() or N_()."""
    error_names = _domain_error_names()
    found = [bad for path in _covered_files(".py") for bad in bare_python_strings(path, error_names)]
    assert not found, "Bare user-visible strings (wrap them in _(), _l() or N_()):\n" + "\n".join(found)


# ---------------------------------------------------------------- the detector itself


@pytest.mark.parametrize("text", ["Log in", "Package {{ x }}", "  Never ", "No tokens yet."])
def test_detector_sees_prose(tmp_path, text):
    """Plain words between tags are reported."""
    page = tmp_path / "page.html"
    page.write_text(f"<p>{text}</p>")
    assert _template_findings(page)


@pytest.mark.parametrize("html", [
    "<p>{{ _('Log in') }}</p>",
    "<p>{{ package.number }} · 12 – {{ x }}</p>",
    "<p>  ← → … </p>",
    "<p><code>webhook-signature</code> <code>flask outbox-retry</code></p>",
    '<input placeholder="https://erp.example.com/oms-events">',
    '<input placeholder="X-Brand-Token">',
    "{# A comment with words #}",
    "{% set kind = ' secondary outline' if x else '' %}<p class=\"{{ 'secondary' }}\"></p>",
    "<p>{{ _('Delete %(url)s?', url=target) }}</p>",
    '<input type="text" value="{{ form.name }}">',
    "<p>{{ 'SELF_SERVICE_PACKAGE_DELIVERY_COMMAND' }} &amp; {{ x }}</p>",
    '<p>{{ attrs }}aria-describedby="{{ name }}-error{{ more }}"</p>',
    "<p>{{ ngettext('%(num)d event', '%(num)d Events', n) }}</p>",
])
def test_detector_ignores_what_is_not_prose(tmp_path, html):
    """Marked strings, expressions, punctuation, numbers, code and comments are not reported."""
    page = tmp_path / "page.html"
    page.write_text(html)
    assert _template_findings(page) == []


@pytest.mark.parametrize("html", [
    '<button title="Close">{{ _("x") }}</button>',
    '<input type="submit" value="Save">',
    '<a aria-label="Main menu" href="#"></a>',
    '<form hx-confirm="Delete it?"></form>',
    '<div data-text-offline="No connection."></div>',
    "<p>{{ 'Yes' if x else 'No' }}</p>",
    "{% block title %}Outbox{% endblock %}",
])
def test_detector_sees_attributes_and_quoted_labels(tmp_path, html):
    """User-visible attributes and capitalised quoted labels inside expressions are reported."""
    page = tmp_path / "page.html"
    page.write_text(html)
    assert _template_findings(page)


def _template_findings(path: Path) -> list[str]:
    """bare_template_strings for a file outside the checkout."""
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return bare_template_strings(path)
    finally:
        ROOT = saved


@pytest.mark.parametrize("code", [
    'flash("You are logged out.", "info")',
    'raise ValidationFailed("The code is wrong.", field="otp")',
    'raise ValidationFailed(f"{name} is unknown.")',
    'name = StringField("Username")',
    'x = Length(max=5, message="Too long.")',
    'message = "On." if enabled else "Off."',
    'LABELS = {"a": "In store"}',
    'with_toast(response, "Saved.")',
    'message, level = "SMS sent.", "success"',
    'x.disabled_reason, x.disabled_at = "Switched off by a user.", now()',
])
def test_python_detector_sees_bare_messages(tmp_path, code):
    """Unmarked messages in the checked places are reported."""
    module = tmp_path / "module.py"
    module.write_text(code + "\n")
    assert _python_findings(module)


@pytest.mark.parametrize("code", [
    'flash(_("You are logged out."), "info")',
    'raise ValidationFailed(_("%(name)s is unknown.", name=name), field="otp_code")',
    'name = StringField(_l("Username"))',
    'LABELS = {"a": N_("In store")}',
    'message = exc.message',
    'flash(exc.message, "error")',
    'raise ValidationFailed(_("Wrong."), field="target_url")',
    'STATUS_LABEL = "in_store"',
    'x.disabled_reason = _("Switched off by a user.")',
    'logger.error("Delivery %s failed", message_id)',
    'return panel(package, toast=(exc.message, "error"))',
])
def test_python_detector_ignores_marked_and_code(tmp_path, code):
    """Marked messages, variables, field names and code-like values are not reported."""
    module = tmp_path / "module.py"
    module.write_text(code + "\n")
    assert _python_findings(module) == []


@pytest.mark.parametrize(("line", "bare"), [
    ('showToast("No connection to the portal.", "error");', True),
    ('showToast(text("offline"), "error");', False),
    ('var x = document.querySelector("[data-scan-next]");', False),
    ('window.htmx.ajax("GET", url, { target: "#modal-content" });', False),
])
def test_script_detector(tmp_path, line, bare):
    """Sentences in scripts are reported; selectors, names and methods are not."""
    script = tmp_path / "page.js"
    script.write_text(line + "\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert bool(bare_script_strings(script)) is bare
    finally:
        ROOT = saved


def _python_findings(path: Path) -> list[str]:
    """bare_python_strings for a file outside the checkout."""
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return bare_python_strings(path, _domain_error_names())
    finally:
        ROOT = saved

"""The catalogue check of `scripts/i18n check` (scripts/i18n_check.py): missing entries, untranslated or fuzzy
messages (with --complete) and broken placeholders are caught; the portal's own catalogues pass the default mode."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "i18n_check.py"


def _load():
    """scripts/i18n_check.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("i18n_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


i18n_check = _load()

MESSAGES = {
    "Save": "Kaydet",
    "Package %(number)s delivered.": "%(number)s paketi teslim edildi.",
    "Your code for order {order_number} is {code}.": "{order_number} siparişinizin kodu: {code}.",
    ("%(num)d item", "%(num)d items"): ("%(num)d ürün", "%(num)d ürün"),
}


def _write(folder: Path, messages: dict, *, fuzzy: tuple = ()) -> Path:
    """A messages.pot with the msgids and a tr and an en catalogue (en untranslated) under folder."""
    pot, tr, en = Catalog(), Catalog(locale="tr"), Catalog(locale="en")
    for msgid, msgstr in messages.items():
        pot.add(msgid)
        en.add(msgid, ("", "") if isinstance(msgid, tuple) else "")
        tr.add(msgid, msgstr, flags=("fuzzy",) if msgid in fuzzy else ())
    for locale, catalogue in (("tr", tr), ("en", en)):
        target = folder / locale / "LC_MESSAGES"
        target.mkdir(parents=True)
        with open(target / "messages.po", "wb") as handle:
            write_po(handle, catalogue)
    with open(folder / "messages.pot", "wb") as handle:
        write_po(handle, pot)
    return folder / "messages.pot"


def _problems(tmp_path: Path, messages: dict, *, complete: bool, fuzzy: tuple = ()) -> list[str]:
    """The check's findings for a made-up set of catalogues."""
    return i18n_check.check(_write(tmp_path, messages, fuzzy=fuzzy), tmp_path, complete=complete)


def test_complete_catalogues_pass_both_modes(tmp_path):
    """A fully translated tr and an empty en (it falls back to the msgids) pass, strict or not."""
    assert _problems(tmp_path, MESSAGES, complete=True) == []
    assert i18n_check.check(tmp_path / "messages.pot", tmp_path, complete=False) == []


@pytest.mark.parametrize("msgstr", ["", ("%(num)d ürün", "")])
def test_a_missing_translation_fails_only_the_complete_check(tmp_path, msgstr):
    """An empty msgstr (or one empty plural form) in tr fails --complete and is allowed by the default mode."""
    msgid = "Save" if msgstr == "" else ("%(num)d item", "%(num)d items")
    problems = _problems(tmp_path, {**MESSAGES, msgid: msgstr}, complete=True)
    assert len(problems) == 1 and "tr/LC_MESSAGES/messages.po" in problems[0] and "1 untranslated" in problems[0]
    assert i18n_check.check(tmp_path / "messages.pot", tmp_path, complete=False) == []


def test_a_fuzzy_translation_fails_the_complete_check(tmp_path):
    """pybabel compiles a fuzzy entry as untranslated: --complete refuses it."""
    problems = _problems(tmp_path, MESSAGES, complete=True, fuzzy=("Save",))
    assert len(problems) == 1 and "fuzzy" in problems[0]


@pytest.mark.parametrize(("msgid", "broken"), [
    ("Package %(number)s delivered.", "%(numara)s paketi teslim edildi."),  # renamed
    ("Package %(number)s delivered.", "Paket teslim edildi."),  # dropped
    ("Package %(number)s delivered.", "%(number)d paketi teslim edildi."),  # another conversion
    ("Your code for order {order_number} is {code}.", "Siparişinizin kodu: {code}."),  # a {name} dropped
    (("%(num)d item", "%(num)d items"), ("%(num)d ürün", "%(count)d ürün")),  # one plural form
])
def test_a_broken_placeholder_fails_both_modes(tmp_path, msgid, broken):
    """A translation whose placeholders differ from its msgid's fails, strict or not."""
    problems = _problems(tmp_path, {**MESSAGES, msgid: broken}, complete=False)
    assert len(problems) == 1 and "the original" in problems[0]


def test_a_catalogue_lacking_a_message_fails(tmp_path):
    """A msgid of the template that a catalogue lacks (scripts/i18n update not run) fails the default mode."""
    pot = _write(tmp_path, MESSAGES)
    from babel.messages.pofile import read_po
    with open(pot, "rb") as handle:
        catalogue = read_po(handle)
    catalogue.add("A new string")
    with open(pot, "wb") as handle:
        write_po(handle, catalogue)
    problems = i18n_check.check(pot, tmp_path, complete=False)
    assert len(problems) == 2 and all("lacks 1 message" in problem for problem in problems)


def test_the_command_line_exits_non_zero_on_a_problem(tmp_path):
    """`python scripts/i18n_check.py POT DIR --complete`, as scripts/i18n runs it, fails with the finding."""
    pot = _write(tmp_path, {**MESSAGES, "Save": ""})
    run = [sys.executable, str(SCRIPT), str(pot), str(tmp_path)]
    assert subprocess.run(run, capture_output=True, text=True).returncode == 0
    strict = subprocess.run([*run, "--complete"], capture_output=True, text=True)
    assert strict.returncode == 1 and "untranslated" in strict.stderr


def test_the_portal_catalogues_keep_their_placeholders():
    """The portal's own catalogues pass the default check (the strict one is switched on at merge time)."""
    directory = ROOT / "portal" / "translations"
    assert i18n_check.check(directory / "messages.pot", directory, complete=False) == []

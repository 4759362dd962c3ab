"""A made-up Turkish catalogue for the translation tests: a translated string can be told from its English msgid."""
from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo


def turkish_catalogue_config(folder: Path, translations: dict) -> dict:
    """Compile `translations` (msgid -> msgstr; tuples for plurals) as tr and add it to the portal's catalogues."""
    catalog = Catalog(locale="tr")
    for msgid, msgstr in translations.items():
        catalog.add(msgid, msgstr)
    target = folder / "tr" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with open(target / "messages.mo", "wb") as handle:
        write_mo(handle, catalog)
    return {"BABEL_TRANSLATION_DIRECTORIES": f"translations;{folder}"}

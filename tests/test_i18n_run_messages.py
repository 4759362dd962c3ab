"""The background runs' messages (Omnitron copies, order import, scheduled jobs) go through the catalogue.

A made-up Turkish catalogue tells a translated message from its English msgid; placeholders are filled after
translation, and module-level labels (N_: copier nouns, skip reasons, job type labels) stay English in data
but translate where a message or a screen shows them.
"""
from __future__ import annotations

import pytest
from flask import g
from flask_babel import gettext

from portal import i18n
from portal.errors import ValidationFailed
from portal.extensions import babel
from portal.jobs import job_types
from portal.orders import service as orders
from portal.orders.models import OrderImportRun
from portal.sync import kinds
from portal.sync import service as sync
from portal.sync.models import SyncJob
from tests.i18n_catalogue import turkish_catalogue_config

TEST_TRANSLATIONS = {
    "Unknown sync kind %(kind)r; use one of %(kinds)s.": "Bilinmeyen kopya türü %(kind)r; şunlardan biri: %(kinds)s.",
    "%(field)s is longer than %(limit)s characters.": "%(field)s %(limit)s karakterden uzun.",
    "%(processed)s %(records)s read from Omnitron: %(created)s created, %(updated)s updated, "
    "%(unchanged)s unchanged, %(failed)s failed.": "Omnitron'dan %(processed)s %(records)s okundu: %(created)s yeni, "
                                                   "%(updated)s güncel, %(unchanged)s aynı, %(failed)s hatalı.",
    "channels": "kanal",
    "Fetched %(fetched)s order(s): %(created)s package(s) created, %(already)s already imported, "
    "%(skipped)s skipped (%(reasons)s), %(failed)s failed.": "%(fetched)s sipariş: %(created)s paket, %(already)s "
                                                             "zaten var, %(skipped)s atlandı (%(reasons)s), "
                                                             "%(failed)s hatalı.",
    "no active scenario": "aktif senaryo yok",
    "Its channel has no active scenario (step 11).": "Kanalının aktif senaryosu yok (adım 11).",
    "it has no items": "ürünü yok",
    "%(name)s must be from %(minimum)s to %(maximum)s.": "%(name)s %(minimum)s ile %(maximum)s arasında olmalı.",
    "%(type)s has no parameter %(name)r (it takes: %(allowed)s).": "%(type)s türünün %(name)r parametresi yok "
                                                                  "(alır: %(allowed)s).",
    "Retry failed SMS": "Başarısız SMS'leri yeniden dene",
}


@pytest.fixture
def app_config(tmp_path):
    """The portal's catalogues plus the made-up Turkish one."""
    return turkish_catalogue_config(tmp_path, TEST_TRANSLATIONS)


@pytest.fixture
def turkish(app, monkeypatch):
    """A request context whose browser asks for Turkish (Flask-Babel's shared catalogue cache emptied around it)."""
    monkeypatch.setattr(i18n, "SUPPORTED_LOCALES", ("en", "tr"))
    babel.domain_instance.cache.clear()
    with app.test_request_context("/", headers={"Accept-Language": "tr"}):
        g.pop("_flask_babel", None)
        yield
    babel.domain_instance.cache.clear()


def test_sync_refusals_record_problems_and_summaries(turkish):
    """A refusal, a record's problem and a copy's summary come out in Turkish, the copier's noun too."""
    with pytest.raises(ValidationFailed) as refused:
        sync.copier_for("nope")
    assert refused.value.message == "Bilinmeyen kopya türü 'nope'; şunlardan biri: addresses, stock_locations, channels."

    with pytest.raises(kinds.RecordInvalid) as invalid:
        kinds._text({"name": "x" * 200}, "name", 120)
    assert str(invalid.value) == "name 120 karakterden uzun."

    job = SyncJob(kind="channels", processed=1234, created=1000, updated=200, unchanged=30, failed=4, removed=0,
                  cursor={})
    assert sync.summary_text(job) == "Omnitron'dan 1,234 kanal okundu: 1,000 yeni, 200 güncel, 30 aynı, 4 hatalı."
    assert kinds.ChannelCopier.noun == "channels"  # the label itself stays English


def test_order_import_summary_skip_reasons_and_order_problems(turkish):
    """The run's summary with its skip reasons, the reasons' advice and an order's problem come out in Turkish."""
    run = OrderImportRun(status=OrderImportRun.DONE, fetched=5, created=2, already_imported=1, skipped=2, failed=0,
                         skip_reasons={"no_active_scenario": 2}, error="")
    assert orders.summary_text(run) == "5 sipariş: 2 paket, 1 zaten var, 2 atlandı (2 aktif senaryo yok), 0 hatalı."
    assert orders.SKIP_REASONS["no_active_scenario"] == "Its channel has no active scenario (step 11)."
    assert gettext(orders.SKIP_REASONS["no_active_scenario"]) == "Kanalının aktif senaryosu yok (adım 11)."

    order = {"id": 7, "number": "A-7", "customer": {"first_name": "Ada", "phone_number": "+905551112233"},
             "channel": 3, "orderitem_set": []}
    with pytest.raises(orders._Unusable) as unusable:
        orders.parse_order(order)
    assert unusable.value.args[0] == "ürünü yok"


def test_job_parameter_refusals_and_type_labels(turkish):
    """Parameter refusals name the type by its translated label; the catalogue keeps the label in English."""
    with pytest.raises(ValidationFailed) as out_of_range:
        job_types.validate_parameters("outbox_retry", {"limit": 0})
    assert out_of_range.value.message == "limit 1 ile 1000 arasında olmalı."
    with pytest.raises(ValidationFailed) as unknown:
        job_types.validate_parameters("outbox_retry", {"days": 3})
    assert unknown.value.message == "Başarısız SMS'leri yeniden dene türünün 'days' parametresi yok (alır: limit)."
    assert job_types.JOB_TYPES["outbox_retry"].label == "Retry failed SMS"


def test_english_wording_is_unchanged(app):
    """Without a translation the messages read exactly as before they were marked."""
    with app.test_request_context("/"):
        run = OrderImportRun(status=OrderImportRun.FAILED, fetched=3, created=0, already_imported=0, skipped=3,
                             failed=0, skip_reasons={"channel_not_copied": 2, "pickup_store_inactive": 1},
                             error="Omnitron is down.\nmore")
        assert orders.summary_text(run) == (
            "Stopped: Omnitron is down. Fetched 3 order(s): 0 package(s) created, 0 already imported, "
            "3 skipped (2 channel not copied, 1 pickup store inactive), 0 failed.")
        assert set(orders.SKIP_LABELS) == set(orders.SKIP_REASONS)
        job = SyncJob(kind="addresses", processed=2, created=2, updated=0, unchanged=0, failed=0, removed=1,
                      cursor={"since": {}})
        assert sync.summary_text(job) == (
            "2 addresses read from Omnitron: 2 created, 0 updated, 0 unchanged, 0 failed. 1 removed: Omnitron no "
            "longer has them, so they were deactivated here (kept for what already uses them). Only records "
            "changed since the last copy were read; records deleted in Omnitron are found by a full copy.")

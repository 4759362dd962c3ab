"""The staff journeys in Turkish (a tablet whose browser asks for tr-TR): pack, make ready, hand over, at both
orientations on both databases. Turkish words are longer than English ones: every screen must still fit (no
horizontal scroll), keep 44 px targets and pass axe-core, and the customer's SMS is in Turkish (the store's
language). Also: a staff member who chose English on the profile gets English on a Turkish tablet."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.packages.states import State
from portal.sms import MemorySmsProvider
from portal.stores.models import StockLocation
from tests.browser.conftest import TIMEOUT_MS


@pytest.fixture
def context(live_server, viewport_size, new_context):
    """A touch tablet set up in Turkish (Accept-Language tr-TR) and Istanbul time, pointed at the live portal."""
    context = new_context(viewport=viewport_size, has_touch=True, base_url=live_server.url,
                          locale="tr-TR", timezone_id="Europe/Istanbul")
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def turkish_store(store):
    """The store's customers read Turkish: their SMS are written in it."""
    with store.live.session() as session:
        session.get(StockLocation, store.store_id).language = "tr"
        session.commit()
    return store


def log_in_turkish(page, store) -> None:
    """The login form, in Turkish, as staff meet it at the start of a shift."""
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "tr")
    page.get_by_label("Kullanıcı adı").fill(store.username)
    page.get_by_label("Parola").fill(store.password)
    page.get_by_role("button", name="Giriş yap").tap()
    page.wait_for_url(re.compile(r"/packages$"))
    expect(page.locator("#search")).to_be_focused()


def scan(page, text: str) -> None:
    """A hardware scanner: the text typed into the focused field, then Enter."""
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def clean(ux, page, name: str, scope: str = "main, header") -> list[str]:
    """The missed targets of one screen: horizontal scroll, targets under 44 px, crowded commands, axe findings."""
    page.wait_for_timeout(400)  # Pico's colour transitions settle before axe reads colours
    figures = ux.check(page, f"tr-{name}", scope)
    problems = []
    if figures["scroll_width"] > figures["inner_width"] or figures["sticking_out"]:
        problems.append(f"{name}: scrolls sideways: {figures['sticking_out']}")
    problems += [f"{name}: target under 44 px: {t}" for t in figures["small_targets"]]
    problems += [f"{name}: crowded: {c}" for c in figures["crowded_commands"]]
    problems += [f"{name}: axe {v['id']}: {v['help']} at {v['nodes']}" for v in figures["axe_violations"]]
    return problems


def test_pack_ready_and_hand_over_in_turkish(page, turkish_store, ux, screenshot, csp_violations):
    store = turkish_store
    package = store.package(state=State.WAITING, items=2)
    store.package(state=State.PACKED, click_collect=False)
    store.package(state=State.BLOCKED, click_collect=False)

    log_in_turkish(page, store)
    expect(page.get_by_role("link", name="Paketler", exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="Çıkış yap")).to_be_visible()
    problems = clean(ux, page, "list")
    for tab in ("#tab-pickup", "#tab-problems", "#tab-all"):  # the tabs' Turkish names fit at both widths
        page.locator(tab).tap()
        expect(page.locator(tab)).to_have_attribute("aria-current", "page")
    problems += clean(ux, page, "list-all")
    screenshot(page, "tr-list")

    # Pack: the primary action is "Paketle"; scan both items, then finish.
    page.goto(f"/packages/{package['id']}")
    expect(page.get_by_role("heading", name=f"{package['number']} paketi")).to_be_visible()
    expect(page.locator("#package-status")).to_contain_text("Bekliyor")
    primary = page.locator("#primary-action")
    expect(primary.locator(".command-label")).to_have_text("Paketle")
    problems += clean(ux, page, "detail-waiting")
    primary.tap()
    page.wait_for_url(re.compile(rf"/packages/{package['id']}/pack$"))
    expect(page.get_by_label("Ürünleri herhangi bir sırayla okutun")).to_be_focused()
    expect(page.locator("#packing-counter")).to_have_text("0 / 2 ürün")
    for item in package["items"]:
        scan(page, item["barcode"])
    expect(page.locator("#packing-counter")).to_have_text("2 / 2 ürün")
    finish = page.get_by_role("button", name="Hepsi işaretlendi: paketlemeyi bitir")
    expect(finish).to_be_visible()
    problems += clean(ux, page, "packing-complete")
    screenshot(page, "tr-packing-all-ticked")
    finish.tap()
    page.wait_for_url(re.compile(rf"/packages/{package['id']}$"))
    expect(page.locator("#package-status")).to_contain_text("Tüm Ürünler Paketlendi")
    assert store.state_of(package["id"]) == State.PACKED

    # Ready: one tap; the toast is Turkish and so is the customer's SMS (the store's language).
    primary = page.locator("#primary-action")
    expect(primary.locator(".command-label")).to_have_text("Teslime hazır")
    primary.tap()
    expect(page.locator("#toasts")).to_contain_text(f"{package['number']} paketi teslim almaya hazır")
    expect(page.locator("#package-status")).to_contain_text("Müşteri Teslimatına Hazır")
    assert store.state_of(package["id"]) == State.READY_FOR_CUSTOMER_PICKUP
    body = MemorySmsProvider.outbox[-1].body
    assert body.startswith(f"{package['order_number']} numaralı siparişinizin teslim alma kodu: ")
    assert "Kadıköy Store mağazasında gösterin." in body and "Son teslim alma tarihi: " in body
    code = re.search(r"\b(\d{6})\b", body).group(1)
    problems += clean(ux, page, "detail-ready")
    screenshot(page, "tr-detail-ready")

    # Hand over: scan the order at the list, a wrong code, then the right one.
    page.get_by_role("link", name="Paketler", exact=True).first.tap()
    expect(page.locator("#search")).to_be_focused()
    scan(page, package["order_number"])
    page.wait_for_url(re.compile(rf"/packages/{package['id']}\?handover=1$"))
    dialog = page.locator("dialog#modal")
    field = dialog.get_by_label("Müşterinin SMS'indeki kod")
    expect(field).to_be_focused()
    page.keyboard.type(f"{(int(code) + 1) % 1_000_000:06d}")
    page.keyboard.press("Enter")
    expect(dialog.locator("#otp-error")).to_have_text("Yanlış kod. 4 deneme hakkı kaldı.")
    problems += clean(ux, page, "handover-error", scope="dialog[open]")
    screenshot(page, "tr-handover-error", full_page=False)
    expect(field).to_be_focused()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#toasts")).to_contain_text(f"{package['number']} paketi teslim edildi.")
    page.wait_for_url(re.compile(r"/packages$"))
    assert store.state_of(package["id"]) == State.DELIVERED

    page.goto(f"/packages/{package['id']}")
    expect(page.locator("#package-status")).to_contain_text("Teslim Edildi")
    newest = page.locator("#package-history tbody tr").first
    expect(newest).to_contain_text("Teslim Edildi")
    problems += clean(ux, page, "detail-delivered")

    assert problems == [], "\n".join(problems)
    assert csp_violations == []


def test_the_profile_language_beats_the_turkish_tablet(page, store, live_server, ux, csp_violations):
    """A staff member who prefers English chooses it on the profile page; the Turkish tablet then shows English."""
    from portal.accounts.models import User

    log_in_turkish(page, store)
    page.get_by_role("link", name="Zeynep Kaya").tap()
    page.wait_for_url(re.compile(r"/profile$"))
    select_box = page.get_by_label("Portalı şu dilde göster")
    expect(select_box).to_have_value("")
    problems = clean(ux, page, "profile")
    select_box.select_option("en")
    page.get_by_role("button", name="Dili kaydet").tap()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_text("Language saved.")).to_be_visible()
    with live_server.session() as session:
        assert session.scalar(select(User.language).where(User.username == store.username)) == "en"
    page.get_by_role("link", name="Packages", exact=True).first.tap()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    assert problems == [], "\n".join(problems)
    assert csp_violations == []

import re
from conftest import log_in
from portal.packages.states import State

def test_explore(page, store, live_server, viewport):
    p = store.package(state=State.READY_FOR_CUSTOMER_PICKUP)
    log_in(page, store)
    print("focused:", page.evaluate("document.activeElement && document.activeElement.id"))
    page.keyboard.type(p["order_number"])
    page.keyboard.press("Enter")
    page.wait_for_timeout(1500)
    print(page.url)
    print(page.content()[:3000])
    page.screenshot(path=f"/tmp/scratch/explore-{viewport}.png", full_page=True)

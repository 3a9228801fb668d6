"""Both languages in a real browser, switched from the header, on a laptop and a phone screen."""

from __future__ import annotations

import pytest
from chromium import in_chromium

pytestmark = pytest.mark.browser

SCREENS = {"laptop": (1366, 900), "phone": (390, 844)}
# What the table says in each language: the html lang, a header, the switch's pressed button.
LANGUAGES = {
    "zh-Hans": {"button": "简体中文", "header": "服务", "range": "条，共", "age": "前"},
    "en": {"button": "English", "header": "Service", "range": " of ", "age": "ago"},
}


def check_table(page, lang: str) -> None:
    words = LANGUAGES[lang]
    page.wait_for_function("lang => document.documentElement.lang === lang", arg=lang)
    assert page.locator(".language button[aria-pressed=true]").inner_text() == words["button"]
    assert page.locator("#results th").first.inner_text().strip().lower() == (
        words["header"].lower()
    )
    assert words["range"] in page.locator("#results .pager .range").inner_text()
    assert page.locator("#results tbody tr[data-service-id]").count() > 0
    # dashboard.js rewrites the ages every second, in the page's words.
    page.wait_for_function(
        "word => [...document.querySelectorAll('[data-age]')].every("
        "el => el.textContent.includes(word))",
        arg=words["age"],
    )
    # The page never scrolls sideways: a wide table scrolls inside its own box.
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than the screen"


@pytest.mark.parametrize("screen", list(SCREENS))
def test_it_switches_the_table_between_english_and_chinese(
    live_server, operator, polled, tmp_path, screen
):
    width, height = SCREENS[screen]

    def steps(page) -> None:
        page.set_viewport_size({"width": width, "height": height})
        step = "en"
        try:
            page.goto(f"{live_server.url}/?per_page=25")
            check_table(page, "en")
            step = "zh-Hans"
            page.get_by_role("button", name="简体中文").click()
            check_table(page, "zh-Hans")
            assert page.url == f"{live_server.url}/?per_page=25"  # back on the same view
            page.reload()  # the choice holds
            check_table(page, "zh-Hans")
            step = "back to en"
            page.get_by_role("button", name="English").click()
            check_table(page, "en")
        except BaseException:
            shot = tmp_path / f"i18n-{screen}-{step}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failure: {shot}")
            raise

    errors = in_chromium(live_server.url, operator.username, steps)
    assert errors == [], f"JavaScript errors on the page: {errors}"

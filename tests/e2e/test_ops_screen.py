"""The screen ops teams live in, in a real browser, on a laptop and a phone: refreshes that keep
the reader's place, the layout, the keyboard, the last visit and the header's alert count."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from chromium import in_chromium
from conftest import work_out_windows
from django.utils import timezone

from dashboard.alerts.conditions import fingerprint
from dashboard.models import Alert, AlertRule, Service, Source, UserPreference

pytestmark = pytest.mark.browser

SCREENS = {"laptop": (1366, 900), "phone": (390, 844)}
ROWS = "#results tbody tr[data-service-id]"


def run(
    live_server,
    operator,
    tmp_path: Path,
    name: str,
    steps: Callable,
    screen: str = "laptop",
    *,
    expect_404: bool = False,
) -> None:
    """steps(page) in Chromium at the screen's size; a screenshot of the page when they fail
    (kept in tmp_path, a test artefact), or always with SCREENSHOTS=<dir>."""
    width, height = SCREENS[screen]
    keep = os.environ.get("SCREENSHOTS")

    def framed(page) -> None:
        page.set_viewport_size({"width": width, "height": height})
        try:
            steps(page)
        except BaseException:
            shot = tmp_path / f"{name}-{screen}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failure: {shot}")
            raise
        if keep:
            page.screenshot(path=f"{keep}/{name}-{screen}.png")

    errors = in_chromium(live_server.url, operator.username, framed)
    if expect_404:  # Chromium logs the page it was asked to open
        errors = [e for e in errors if "status of 404" not in e]
    assert errors == [], f"JavaScript errors on the page: {errors}"


def fresh(source_name: str = "fixture") -> None:
    """Fresh data: no poll request racing what the test does."""
    now = timezone.now()
    Source.objects.filter(name=source_name).update(last_success_at=now, last_poll_at=now)


def mark(page, selector: str) -> None:
    page.evaluate(f"document.querySelector('{selector}').dataset.old = '1'")


def wait_for_refresh(page, selector: str) -> None:
    page.wait_for_function(
        "s => !document.querySelector(s) || !document.querySelector(s).dataset.old",
        arg=selector,
        timeout=8_000,
    )


@pytest.fixture
def fast_refresh(settings):
    settings.DASHBOARD_REFRESH_SECONDS = 1


@pytest.fixture
def thirty(make_service):
    services = [
        make_service(f"svc-{n:02d}", "failed" if n % 4 == 0 else "running") for n in range(30)
    ]
    fresh()
    work_out_windows()
    return services


@pytest.mark.parametrize("screen", list(SCREENS))
def test_a_refresh_keeps_what_is_typed_and_the_focus(
    live_server, operator, thirty, fast_refresh, tmp_path, screen
):
    def steps(page) -> None:
        page.goto(f"{live_server.url}/?per_page=25")
        field = page.get_by_label("Save this view as")
        field.fill("prod failures")
        mark(page, "#results")
        page.wait_for_timeout(2_500)  # two refreshes' worth: held back while typing
        assert page.evaluate("document.querySelector('#results').dataset.old") == "1"
        assert field.input_value() == "prod failures"
        assert page.evaluate("document.activeElement.name") == "name"
        # Leave the field empty and go to a row's link: the refresh runs, the focus stays.
        field.fill("")
        link = page.locator(f"{ROWS} a.service-link").nth(3)
        href = link.get_attribute("href")
        link.focus()
        mark(page, "#results")
        wait_for_refresh(page, "#results")
        page.wait_for_timeout(200)
        assert page.evaluate("document.activeElement.getAttribute('href')") == href

    run(live_server, operator, tmp_path, "refresh-keeps-input", steps, screen)


def test_a_refresh_waits_while_a_menu_is_open(
    live_server, operator, thirty, fast_refresh, tmp_path
):
    def steps(page) -> None:
        page.goto(f"{live_server.url}/")
        page.get_by_text("Saved views", exact=True).click()
        mark(page, "#results")
        page.wait_for_timeout(2_500)
        assert page.evaluate("document.querySelector('#results').dataset.old") == "1"
        assert page.locator("details.menu[open]").count() == 1
        page.get_by_text("Saved views", exact=True).click()  # closed: refreshes resume
        wait_for_refresh(page, "#results")

    run(live_server, operator, tmp_path, "refresh-menu", steps)


@pytest.mark.parametrize(("lang", "paused"), [("en", "paused"), ("zh-hans", "已暂停")])
def test_the_refresh_can_be_paused_and_the_choice_is_kept_in_this_browser(
    live_server, operator, thirty, fast_refresh, tmp_path, lang, paused
):
    UserPreference.objects.update_or_create(user=operator, defaults={"language": lang})

    def steps(page) -> None:
        page.goto(f"{live_server.url}/")
        if lang != "en":
            page.get_by_role("button", name="简体中文").click()
            page.wait_for_function("() => document.documentElement.lang === 'zh-Hans'")
        choice = page.locator("#refresh-every")
        assert choice.is_visible()
        choice.select_option(label=paused)
        mark(page, "#results")
        page.wait_for_timeout(2_500)
        assert page.evaluate("document.querySelector('#results').dataset.old") == "1"
        page.reload()
        assert page.locator("#refresh-every").input_value() == "off"
        assert page.evaluate("localStorage.getItem('dashboard.refresh')") == "off"
        page.locator("#refresh-every").select_option("auto")
        mark(page, "#results")
        wait_for_refresh(page, "#results")

    run(live_server, operator, tmp_path, f"refresh-pause-{lang}", steps)


@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_service_page_refreshes_and_opens_on_a_range_that_fits_its_history(
    live_server, operator, make_service, fast_refresh, tmp_path, screen
):
    young = make_service("young", "running", first_seen_at=timezone.now() - timedelta(minutes=40))
    fresh()
    url = f"{live_server.url}/services/{young.service_id}/"

    def steps(page) -> None:
        page.goto(url)
        assert page.locator(".ranges .chip-on").inner_text() == "1h"
        mark(page, "#service-live")
        mark(page, "#freshness")
        wait_for_refresh(page, "#service-live")
        wait_for_refresh(page, "#freshness")
        assert page.url == url  # a refresh never moves the address
        page.goto(f"{url}?range=24h")  # an explicit choice holds, through refreshes too
        assert page.locator(".ranges .chip-on").inner_text() == "24h"
        mark(page, "#service-live")
        wait_for_refresh(page, "#service-live")
        assert page.locator(".ranges .chip-on").inner_text() == "24h"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than the screen"

    run(live_server, operator, tmp_path, "service-refresh", steps, screen)


def test_the_phone_folds_the_filters_and_keeps_names_in_view(
    live_server, operator, thirty, tmp_path
):
    def steps(page) -> None:
        page.goto(f"{live_server.url}/?window=1h")
        toggle = page.locator(".filters-toggle")
        assert toggle.is_visible()
        assert not page.get_by_label("failed", exact=True).is_visible()
        first_row = page.locator(ROWS).first.bounding_box()
        assert first_row["y"] < 844, f"the first row starts {first_row['y']}px down"
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        assert page.get_by_label("failed", exact=True).is_visible()
        toggle.click()
        assert not page.get_by_label("failed", exact=True).is_visible()
        # Scrolled sideways, the table keeps its names in view.
        page.evaluate("document.querySelector('.table-wrap').scrollLeft = 400")
        wrap = page.locator(".table-wrap").bounding_box()
        name = page.locator(f"{ROWS} td.name").first.bounding_box()
        assert abs(name["x"] - wrap["x"]) <= 2
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than the screen"

    run(live_server, operator, tmp_path, "phone-filters", steps, "phone")


def test_the_laptop_shows_every_filter_without_a_toggle(live_server, operator, thirty, tmp_path):
    def steps(page) -> None:
        page.goto(f"{live_server.url}/?window=1h")
        assert not page.locator(".filters-toggle").is_visible()
        assert page.get_by_label("failed", exact=True).is_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than the screen"

    run(live_server, operator, tmp_path, "laptop-filters", steps)


@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_keyboard_skips_to_the_table_and_slash_searches(
    live_server, operator, thirty, tmp_path, screen
):
    def steps(page) -> None:
        page.goto(f"{live_server.url}/?per_page=25")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.getAttribute('href')") == "#results"
        page.keyboard.press("Enter")
        # One tab stop per row: from one row's link, Tab goes to the next row's link.
        links = page.locator(f"{ROWS} a.service-link")
        links.nth(0).focus()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.getAttribute('href')") == (
            links.nth(1).get_attribute("href")
        )
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "q"
        page.keyboard.type("svc-0")  # "/" typed in a field is a character, not a shortcut
        page.keyboard.press("/")
        assert page.locator("#q").input_value() == "svc-0/"

    run(live_server, operator, tmp_path, "keyboard", steps, screen)


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", r"Show what changed since my last visit \(3\xa0hours ago\)"), ("zh-hans", "3")],
)
def test_the_last_visit_is_kept_on_the_server_and_told_in_words(
    live_server, operator, make_service, tmp_path, lang, words
):
    make_service("alpha", "failed")
    fresh()
    three_hours_ago = timezone.now() - timedelta(hours=3)
    UserPreference.objects.update_or_create(
        user=operator, defaults={"seen_at": three_hours_ago, "language": lang}
    )

    def steps(page) -> None:
        page.goto(f"{live_server.url}/?status=failed")
        if lang != "en":
            page.get_by_role("button", name="简体中文").click()
            page.wait_for_function("() => document.documentElement.lang === 'zh-Hans'")
        link = page.locator("#since-last-visit")
        assert re.search(words, link.inner_text()), link.inner_text()
        if lang != "en":
            assert "上次访问" in link.inner_text()
        assert re.fullmatch(r"/\?status=failed&since=[\d%A:.TZ-]+", link.get_attribute("href"))
        link.click()
        page.wait_for_url(re.compile(r"since="))

    run(live_server, operator, tmp_path, f"last-visit-{lang}", steps)
    assert UserPreference.objects.get(user=operator).last_visit_at == three_hours_ago


@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_header_counts_firing_alerts_after_a_partial_refresh(
    live_server, operator, make_service, fast_refresh, tmp_path, screen
):
    rule = AlertRule.objects.create(name="failed", condition="statuses", statuses=["failed"])
    service = make_service("alpha", "failed")
    Alert.objects.create(
        rule=rule,
        source=service.source,
        service=service,
        fingerprint=fingerprint(rule.name, service.source.name, service.service_id),
        labels={"alertname": rule.name},
        started_at=timezone.now(),
        notified_at=timezone.now(),
    )
    fresh()

    def steps(page) -> None:
        page.goto(f"{live_server.url}/")
        count = page.locator("#alerts-firing .count")
        assert count.inner_text().startswith("1")
        page.evaluate("document.getElementById('alerts-firing').textContent = ''")
        page.wait_for_selector("#alerts-firing .count", state="attached", timeout=8_000)

    run(live_server, operator, tmp_path, "alert-count", steps, screen)


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_a_page_past_the_end_lands_on_the_last_page_in_the_dashboards_layout(
    live_server, operator, thirty, tmp_path, lang
):
    UserPreference.objects.update_or_create(user=operator, defaults={"language": lang})

    def steps(page) -> None:
        page.goto(f"{live_server.url}/?per_page=25&page=9&sort=name")
        assert "26–30" in page.locator("#results .pager .range").inner_text()
        page.goto(f"{live_server.url}/nowhere/")
        assert page.locator("header.topbar .brand").is_visible()
        assert page.locator("h1").inner_text() == ("Not found" if lang == "en" else "未找到")
        assert page.locator("nav.sections").is_visible()
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") != (
            "rgba(0, 0, 0, 0)"
        )

    run(live_server, operator, tmp_path, f"errors-{lang}", steps, expect_404=True)
    assert Service.objects.count() == 30


@pytest.mark.parametrize("query", ["", "window=1h", "window=24h&detect=idle"])
def test_the_laptop_fits_the_table_without_scrolling_sideways(
    live_server, operator, polled, tmp_path, query
):
    def steps(page) -> None:
        page.goto(f"{live_server.url}/?{query}")
        wrap = page.evaluate(
            "() => { const w = document.querySelector('.table-wrap');"
            " return [w.scrollWidth, w.clientWidth]; }"
        )
        widths = page.evaluate(
            "() => [...document.querySelectorAll('#results th')]"
            ".map(th => th.innerText.trim() + ' ' + Math.round(th.getBoundingClientRect().width))"
        )
        assert wrap[0] <= wrap[1], f"the table is {wrap[0]}px wide in {wrap[1]}px: {widths}"

    run(live_server, operator, tmp_path, f"laptop-fit-{query.replace('&', '-')}", steps)


@pytest.mark.parametrize(("screen", "lang"), [("laptop", "en"), ("phone", "zh-hans")])
def test_the_column_chooser_is_remembered_in_this_browser(
    live_server, operator, thirty, tmp_path, screen, lang
):
    UserPreference.objects.update_or_create(user=operator, defaults={"language": lang})
    menu_name = "Columns" if lang == "en" else "显示列"

    def steps(page) -> None:
        page.goto(f"{live_server.url}/?window=1h")
        if lang != "en":
            page.get_by_role("button", name="简体中文").click()
            page.wait_for_function("() => document.documentElement.lang === 'zh-Hans'")
        owner_header = page.locator('#results th[data-col="owner"]')
        assert owner_header.is_visible()
        page.get_by_text(menu_name, exact=True).click()
        box = page.locator('.columns-menu input[value="owner"]')
        box.uncheck()
        assert not owner_header.is_visible()
        assert not page.locator(f"{ROWS} td.owner").first.is_visible()
        page.get_by_text(menu_name, exact=True).click()
        page.reload()
        assert not page.locator('#results th[data-col="owner"]').is_visible()
        assert page.locator('#results th[data-col="service_name"]').is_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than the screen"

    run(live_server, operator, tmp_path, f"columns-{lang}", steps, screen)


@pytest.mark.parametrize("screen", list(SCREENS))
def test_charts_and_times_follow_the_dashboards_time_zone(
    live_server, operator, make_service, settings, tmp_path, screen
):
    settings.DASHBOARD_TIME_ZONE = "Asia/Shanghai"  # UTC+8 all year
    service = make_service("alpha", first_seen_at=timezone.now() - timedelta(days=3))
    fresh()

    def steps(page) -> None:
        page.goto(f"{live_server.url}/services/{service.service_id}/")
        tick = page.locator("#calls-heading ~ svg [data-tick]").first
        utc_hour = int(tick.get_attribute("data-tick")[11:13])
        assert tick.text_content() == f"{(utc_hour + 8) % 24:02d}:00"
        assert page.locator("#calls-heading ~ svg [data-zone-caption]").text_content() != "UTC"
        assert not page.locator("#freshness time").first.inner_text().endswith("UTC")
        # The bars' hover titles too: the last hour's, "Dec 04 09:00–10:00 UTC, so far: …".
        title = page.locator("#calls-heading ~ svg g.column title").last
        start = title.get_attribute("data-times").split('"')[3]  # the first moment, in UTC
        local = f"{(int(start[11:13]) + 8) % 24:02d}:{start[14:16]}"
        assert local in title.text_content() and "UTC" not in title.text_content()
        # A reader may still pick UTC, for the charts too.
        page.get_by_text("Preferences", exact=True).click()
        page.get_by_label("UTC").check()
        assert tick.text_content() == f"{utc_hour:02d}:00"
        assert page.locator("#calls-heading ~ svg [data-zone-caption]").text_content() == "UTC"
        assert f"{start[11:16]}" in title.text_content() and "UTC" in title.text_content()

    run(live_server, operator, tmp_path, "time-zone", steps, screen)


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_the_readme_screenshots_show_the_table_in_each_language(
    live_server, operator, polled, tmp_path, lang
):
    """The README's picture of the table in each language, at 1366x900. With README_SCREENSHOTS=1
    it redraws the README's files: `README_SCREENSHOTS=1 .venv/bin/pytest -k readme_screenshots`."""
    readme = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / f"services-{lang}.png"
    target = readme if os.environ.get("README_SCREENSHOTS") else tmp_path / readme.name
    html_lang, header = {"en": ("en", "Status"), "zh-hans": ("zh-Hans", "状态")}[lang]

    def steps(page) -> None:
        page.goto(f"{live_server.url}/")
        if lang != "en":
            page.get_by_role("button", name="简体中文").click()
            page.wait_for_function("() => document.documentElement.lang === 'zh-Hans'")
        assert page.evaluate("document.documentElement.lang") == html_lang
        assert page.locator("table th").filter(has_text=header).count() >= 1
        page.screenshot(path=str(target))
        assert target.stat().st_size > 10_000  # a picture of the table, not of a blank page

    run(live_server, operator, tmp_path, f"readme-{lang}", steps)

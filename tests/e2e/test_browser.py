"""The page in a real browser: Debian's Chromium driven by Playwright against live_server."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from chromium import CHROMIUM, LAUNCH_ARGS, sign_in
from django.utils import timezone

from dashboard.models import Service, Source, UserPreference

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    # Playwright's sync API keeps an event loop in this thread; the tests' own ORM calls are
    # still plain synchronous code, so Django's async guard has nothing to protect here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=LAUNCH_ARGS,
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server, operator):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Content-Security-Policy violations show up as console errors: none are expected.
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    sign_in(page, live_server.url, operator.username)
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def shown_rows(page) -> list[tuple[str, str]]:
    """(name, badge text) of every row the table shows."""
    rows = page.locator("#results tbody tr[data-service-id]")
    return [
        (row.locator(".service-name").inner_text(), row.locator(".badge").inner_text())
        for row in rows.all()
    ]


def test_it_filters_by_status_keeps_it_in_the_url_and_survives_a_reload(page, live_server, polled):
    status = "failed" if Service.objects.filter(status="failed").exists() else "concerning"
    expected = sorted(Service.objects.filter(status=status).values_list("service_name", flat=True))
    assert expected, "the seeded fleet has services in this status"

    page.goto(f"{live_server.url}/?per_page=200")
    everything = shown_rows(page)
    assert len(everything) == Service.objects.count()

    page.get_by_label(status, exact=True).check()
    page.wait_for_url(re.compile(rf"status={status}"))
    page.wait_for_function(
        "n => document.querySelectorAll('#results tbody tr[data-service-id]').length === n",
        arg=len(expected),
    )
    filtered = shown_rows(page)
    assert sorted(name for name, _ in filtered) == expected
    assert {badge for _, badge in filtered} == {status}
    assert page.url == f"{live_server.url}/?status={status}&per_page=200"

    page.reload()
    assert shown_rows(page) == filtered
    assert page.get_by_label(status, exact=True).is_checked()

    page.go_back()
    page.wait_for_url(f"{live_server.url}/?per_page=200")
    page.wait_for_function(
        "n => document.querySelectorAll('#results tbody tr[data-service-id]').length === n",
        arg=len(everything),
    )
    assert not page.get_by_label(status, exact=True).is_checked()


def test_it_sorts_from_a_header_without_reloading_the_page(page, live_server, polled):
    page.goto(f"{live_server.url}/?per_page=200")
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("link", name=re.compile("^Invocations")).click()
    page.wait_for_url(re.compile(r"sort=-calls"))
    page.wait_for_selector('th[aria-sort="descending"]')
    assert page.evaluate("window.__sameDocument") is True  # swapped in place, not reloaded
    expected = list(
        Service.objects.order_by("-invocation_times", "-id").values_list("service_name", flat=True)
    )
    assert [name for name, _ in shown_rows(page)] == expected


def test_it_filters_from_a_status_tile(page, live_server, polled):
    page.goto(f"{live_server.url}/")
    tile = page.locator("#tiles a.tile").first
    status = tile.locator(".tile-label").inner_text()
    count = int(tile.locator(".tile-count").inner_text().replace(",", ""))
    tile.click()
    page.wait_for_url(re.compile(rf"status={status}"))
    page.wait_for_selector("#tiles a.tile-selected")
    assert page.locator("#results .pager .range").inner_text().endswith(f"of {count:,}")
    assert {badge for _, badge in shown_rows(page)} == {status}
    assert page.get_by_label(status, exact=True).is_checked()


def test_it_searches_as_you_type(page, live_server, polled):
    target = Service.objects.order_by("service_name").first()
    page.goto(f"{live_server.url}/")
    page.get_by_placeholder("Search name, id, description").fill(target.service_id[:13])
    page.wait_for_url(re.compile(r"q="))
    page.wait_for_function(
        "n => document.querySelectorAll('#results tbody tr[data-service-id]').length === n",
        arg=1,
    )
    assert shown_rows(page)[0][0] == target.service_name


def test_it_switches_theme_and_remembers_it_until_reset(page, live_server, polled):
    page.goto(f"{live_server.url}/")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    light_background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.get_by_text("Preferences", exact=True).click()
    page.get_by_label("Dark").check()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    dark_background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark_background != light_background

    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.get_by_text("Preferences", exact=True).click()
    page.get_by_role("button", name="Reset preferences").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert page.get_by_label("Auto (as the system)").is_checked()


@pytest.fixture
def shanghai_page(browser, live_server, operator):
    context = browser.new_context(timezone_id="Asia/Shanghai", locale="en-GB")
    page = context.new_page()
    sign_in(page, live_server.url, operator.username)
    yield page
    context.close()


def test_it_shows_times_in_the_browsers_zone_when_asked(shanghai_page, live_server, polled):
    page = shanghai_page
    as_of = page.locator("#freshness time").first
    utc_text = as_of.inner_text()
    assert utc_text.endswith("UTC")
    page.get_by_text("Preferences", exact=True).click()
    page.get_by_label("This browser's time zone").check()
    hour = int(utc_text[:2])
    assert as_of.inner_text().startswith(f"{(hour + 8) % 24:02d}:")
    page.reload()  # the choice holds across pages
    assert not page.locator("#freshness time").first.inner_text().endswith("UTC")
    page.get_by_text("Preferences", exact=True).click()
    page.get_by_label("UTC").check()
    assert page.locator("#freshness time").first.inner_text().endswith("UTC")


def test_it_works_from_the_keyboard_alone(page, live_server, polled):
    page.goto(f"{live_server.url}/?per_page=25")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    # Into the filters: the search box, then the first status checkbox.
    page.locator("#q").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.value")
    page.keyboard.press("Space")
    page.wait_for_url(re.compile(rf"status={focused}"))
    # A sort header is a link: Enter sorts.
    header = page.locator("th a", has_text="Failures")
    header.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"sort=-failures"))
    page.wait_for_selector('th[aria-sort="descending"]')


def test_pagination_works_from_the_keyboard(page, live_server, polled):
    page.goto(f"{live_server.url}/?per_page=25")
    page.locator("a[rel=next]").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"[?&]page=2"))
    page.wait_for_selector(".pager .range >> text=/^26–/")
    assert page.locator(".pager .range").inner_text().startswith("26–")


def contrast(page, selector: str) -> float:
    """WCAG contrast ratio of an element's text against its own background."""
    return page.evaluate(
        """selector => {
            const el = document.querySelector(selector);
            const style = getComputedStyle(el);
            const parse = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
            const lum = rgb => {
                const [r, g, b] = rgb.map(v => {
                    v /= 255;
                    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
                });
                return 0.2126 * r + 0.7152 * g + 0.0722 * b;
            };
            let bg = style.backgroundColor, node = el;
            while (bg === "rgba(0, 0, 0, 0)" || bg === "transparent") {
                node = node.parentElement;
                bg = getComputedStyle(node).backgroundColor;
            }
            const [a, b] = [lum(parse(style.color)), lum(parse(bg))].sort((x, y) => y - x);
            return (a + 0.05) / (b + 0.05);
        }""",
        selector,
    )


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_badges_meet_wcag_aa_contrast_in_both_themes(page, live_server, make_service, theme):
    for status in ["failed", "concerning", "deploying", "running", "stopping", "finished", "odd"]:
        make_service(f"svc-{status}", status)
    page.goto(f"{live_server.url}/")
    page.evaluate(f"localStorage.setItem('dashboard.theme', '{theme}')")
    page.reload()
    for tone in ["bad", "warn", "info", "ok", "muted", "done", "unknown"]:
        ratio = contrast(page, f".badge-{tone}")
        assert ratio >= 4.5, f"{tone} badge in {theme}: {ratio:.2f}"
    for selector in [".fresh", ".services th a", ".tile-label", ".pager"]:
        assert contrast(page, selector) >= 4.5, selector


def test_every_control_has_an_accessible_name(page, live_server, polled):
    page.goto(f"{live_server.url}/")
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, button, a')]
            .filter(el => el.offsetParent !== null)
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.textContent.trim() && !el.getAttribute('placeholder'))
            .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert unnamed == []
    assert page.evaluate("document.documentElement.lang") == "en"


def test_the_page_links_changes_since_the_last_visit(page, live_server, make_service, operator):
    alpha = make_service("alpha", "failed")
    now = timezone.now()  # fresh data: no poll request racing the click
    Source.objects.filter(pk=alpha.source_id).update(last_success_at=now, last_poll_at=now)
    # The previous visit ended an hour ago (the server keeps it, not the browser).
    UserPreference.objects.update_or_create(
        user=operator, defaults={"seen_at": now - timedelta(hours=1)}
    )
    link = page.locator("#since-last-visit")
    page.goto(f"{live_server.url}/?status=failed&window=1h")
    assert link.is_visible()
    assert re.fullmatch(
        r"/\?status=failed&window=1h&since=\d{4}-\d\d-\d\dT[\d%A.]+Z", link.get_attribute("href")
    )
    link.click()
    page.wait_for_url(re.compile(r"since="))
    assert page.locator('.chip:has-text("changed since")').is_visible()
    page.get_by_label("stuck", exact=True).check()
    page.wait_for_url(re.compile(r"detect=stuck"))
    assert "window=1h" in page.url and "since=" in page.url

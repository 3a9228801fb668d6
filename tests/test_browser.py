"""The page in a real browser: Debian's Chromium driven by Playwright against live_server."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import OPERATOR_PASSWORD

from dashboard.models import Service

CHROMIUM = Path("/usr/bin/chromium")
# Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
# still plain synchronous code, so Django's async guard has nothing to protect here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            # The machine has no network: keep Chromium from trying to phone home.
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
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
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("User name").fill(operator.username)
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
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

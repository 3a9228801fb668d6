"""Chromium for tests that need a browser of their own (Debian's package, driven by Playwright)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import OPERATOR_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
# The machine has no network: keep Chromium from trying to phone home.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def sign_in(page, base: str, username: str, password: str = OPERATOR_PASSWORD) -> None:
    """Through the login form, as a person would."""
    page.goto(f"{base}/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")


def in_chromium(base: str, username: str, steps: Callable) -> list[str]:
    """Sign in to a fresh Chromium as `username`, run steps(page); the page's JavaScript errors
    (a Content-Security-Policy violation is one).

    Runs in a thread of its own: tests/test_browser.py keeps a session-wide Playwright in this
    one, and two sync Playwrights cannot share a thread. Steps must not use the ORM.
    """
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    outcome: dict[str, object] = {}

    def run() -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM),
                    args=LAUNCH_ARGS,
                )
                try:
                    page = browser.new_page(viewport={"width": 1366, "height": 768})
                    page.set_default_timeout(10_000)
                    errors: list[str] = []
                    page.on("pageerror", lambda exc: errors.append(str(exc)))
                    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                    sign_in(page, base, username)
                    steps(page)
                    outcome["errors"] = errors
                finally:
                    browser.close()
        except BaseException as exc:  # handed to the test's own thread
            outcome["exception"] = exc

    thread = threading.Thread(target=run, name="chromium", daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "Chromium did not finish in 2 minutes"
    if "exception" in outcome:
        raise outcome["exception"]
    return outcome["errors"]

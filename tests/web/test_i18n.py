"""English and Simplified Chinese: the catalog, how a language is chosen, and every page in it.

Machine formats (URLs, CSV, JSON) stay as they are in every language; what people read follows
the language they chose, else their browser's, else settings.LANGUAGE_CODE.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import sys
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ROOT
from django.conf import settings
from django.test import Client
from django.utils import timezone, translation

from dashboard.alerts import messages
from dashboard.alerts.channels import AlertLine, Notification
from dashboard.alerts.conditions import fingerprint
from dashboard.models import Alert, AlertRule, PollRun, UserPreference
from dashboard.templatetags.dashboard import html_lang
from dashboard.web import charts, format
from dashboard.web.accounts import create_user

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans,zh;q=0.9,en;q=0.5"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


@pytest.fixture(autouse=True)
def back_to_the_default_language():
    # A request leaves its language active in this thread: later tests start from the default.
    yield
    translation.deactivate()


def load_catalog_tool():
    spec = importlib.util.spec_from_file_location("locale_catalog", ROOT / "locale" / "catalog.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def body(response) -> str:
    return response.content.decode()


def html_lang_of(response) -> str:
    return re.search(r'<html lang="([^"]+)">', body(response)).group(1)


# The catalog


def test_every_text_in_the_chinese_catalog_is_translated_and_none_is_fuzzy():
    found = load_catalog_tool().problems(PO)
    assert found.untranslated == []
    assert found.fuzzy == []


def test_the_catalog_has_every_text_the_code_and_templates_mark_for_translation():
    tool = load_catalog_tool()
    found = tool.problems(PO)
    # The fix for either: `.venv/bin/python locale/catalog.py update`, then translate.
    assert found.missing == []
    assert found.unused == []
    keys = {text.key for text in tool.found_texts()}
    # The extraction sees each kind of mark: Python gettext and pgettext, plural templates.
    assert ("failed", "service status") in keys
    assert ("Refresh now", None) in keys
    assert ("%(failures)s poll failed", None) in keys
    assert ("%(count)s min", "duration") in keys


def test_the_compiled_catalog_is_built_from_the_current_po_file():
    assert MO.exists(), "run `make install` (it compiles the catalogs)"
    assert MO.stat().st_mtime >= PO.stat().st_mtime, "the .mo is older than the .po: make install"


def test_the_compiled_catalog_is_not_committed():
    assert "*.mo" in (ROOT / ".gitignore").read_text().split()


# Choosing the language


def test_a_chinese_browser_gets_chinese_pages(client, make_service):
    make_service("alpha", "running")
    response = client.get("/", **ZH)
    assert html_lang_of(response) == "zh-Hans"
    assert response["Content-Language"] == "zh-hans"
    text = body(response)
    assert "立即刷新" in text and ">服务</a>" in text
    assert "Refresh now" not in text


def test_an_english_browser_gets_english_pages(client, make_service):
    make_service("alpha", "running")
    response = client.get("/", **EN)
    assert html_lang_of(response) == "en"
    assert "Refresh now" in body(response)
    assert "立即刷新" not in body(response)


def test_without_accept_language_pages_are_in_the_servers_language(client, settings):
    assert html_lang_of(client.get("/")) == "en"
    assert "Accept-Language" in client.get("/")["Vary"]
    settings.LANGUAGE_CODE = "zh-hans"  # DASHBOARD_LANGUAGE=zh-hans
    assert html_lang_of(client.get("/")) == "zh-Hans"
    assert html_lang_of(client.get("/", **EN)) == "en"


def test_the_switch_saves_a_signed_in_users_choice_and_it_follows_them(operator, client):
    response = client.post("/language/", {"language": "zh-hans", "next": "/polls/?outcome=ok"})
    assert response.status_code == 303
    assert response["Location"] == "/polls/?outcome=ok"
    assert UserPreference.objects.get(user=operator).language == "zh-hans"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert html_lang_of(client.get("/polls/")) == "zh-Hans"

    # Another browser: no cookie, an English Accept-Language; the saved choice wins.
    elsewhere = Client()
    elsewhere.force_login(operator)
    response = elsewhere.get("/", **EN)
    assert html_lang_of(response) == "zh-Hans"
    assert ">轮询</a>" in body(response)


def test_switching_back_to_english_is_saved_too(operator, client):
    client.post("/language/", {"language": "zh-hans", "next": "/"})
    client.post("/language/", {"language": "en", "next": "/"})
    assert UserPreference.objects.get(user=operator).language == "en"
    other = Client()
    other.force_login(operator)
    assert html_lang_of(other.get("/", **ZH)) == "en"


def test_an_anonymous_choice_goes_in_the_cookie_only(db, anonymous_client):
    response = anonymous_client.post("/language/", {"language": "zh-hans", "next": "/login/"})
    assert response.status_code == 303
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert UserPreference.objects.count() == 0
    login = anonymous_client.get("/login/", **EN)
    assert html_lang_of(login) == "zh-Hans"
    assert "用户名" in body(login) and "密码" in body(login)


def test_the_switch_ignores_unknown_languages_and_foreign_next_urls(client, operator):
    response = client.post("/language/", {"language": "fr", "next": "https://evil.example/"})
    assert response.status_code == 303
    assert response["Location"] == "/"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert not UserPreference.objects.filter(user=operator).exists()
    assert client.get("/language/").status_code == 405


def test_a_session_from_before_preferences_looks_the_choice_up_once(operator):
    UserPreference.objects.create(user=operator, language="zh-hans")
    browser = Client()
    browser.force_login(operator)
    session = browser.session
    session.pop("dashboard_language")
    session.save()
    assert html_lang_of(browser.get("/", **EN)) == "zh-Hans"
    assert browser.session["dashboard_language"] == "zh-hans"


def test_every_page_has_the_switch_with_the_current_language_pressed(client):
    text = body(client.get("/events/", **ZH))
    form = re.search(r'<form class="language".*?</form>', text, re.S).group(0)
    assert 'action="/language/"' in form and 'name="csrfmiddlewaretoken"' in form
    assert re.search(r'value="zh-hans" lang="zh-Hans" aria-pressed="true">简体中文<', form)
    assert re.search(r'value="en" lang="en" aria-pressed="false">English<', form)
    assert 'name="next" value="/events/"' in form


def test_it_writes_bcp47_language_tags():
    assert [html_lang(code) for code in ("zh-hans", "en", "en-us", "zh-hant-tw")] == [
        "zh-Hans",
        "en",
        "en-US",
        "zh-Hant-TW",
    ]


# Pages in Chinese


@pytest.fixture
def fleet_rows(make_service):
    return [
        make_service("alpha", "running", invocation_times=1_234_567, failed_times=12_345),
        make_service("bravo", "failed", invocation_times=50, failed_times=40),
        make_service("charlie", "deploying", progress=40, invocation_times=0, failed_times=0),
        make_service("delta", "Rebooting"),
    ]


def test_statuses_and_tiles_read_in_chinese_and_link_with_the_api_values(client, fleet_rows):
    text = body(client.get("/", **ZH))
    tiles = re.search(r'<nav id="tiles".*?</nav>', text, re.S).group(0)
    labels = re.findall(r'<span class="tile-label">([^<]*)</span>', tiles)
    assert labels == ["异常", "未知：Rebooting", "部署中", "运行中"]
    assert 'href="/?status=failed"' in tiles
    badges = re.findall(r'<span class="badge badge-[a-z]+">([^<]*)</span>', text)
    assert "异常" in badges and "运行中" in badges and "部署中 40%" in badges
    # The filter's checkboxes: Chinese words, the API's values.
    assert '<input type="checkbox" name="status" value="failed"> 异常</label>' in text
    assert '<input type="checkbox" name="detect" value="stuck"> 卡住</label>' in text
    assert '<option value="real-time">在线服务</option>' in text


def test_table_headers_pager_and_chips_read_in_chinese(client, fleet_rows):
    text = body(client.get("/?status=failed&status=running&q=a&per_page=25", **ZH))
    headers = re.findall(r'<th scope="col"[^>]*>\s*(?:<a [^>]*>)?([^<]*)<', text)
    assert headers[:8] == [
        "服务",
        "状态",
        "类型",
        "所有者",
        "调用次数",
        "失败次数",
        "失败率",
        "上次轮询后调用数",
    ]
    assert "第 1–2 条，共 2 条" in text
    assert "第 1 / 1 页" in text
    assert ">状态：异常 <" in text and ">状态：运行中 <" in text and ">搜索：a <" in text
    assert "导出此视图：" in text and "全部清除" in text


def test_an_htmx_refresh_is_in_the_chosen_language_too(client, fleet_rows):
    partial = body(client.get("/?status=failed", headers={"HX-Request": "true"}, **ZH))
    assert "<html" not in partial
    assert "第 1–1 条，共 1 条" in partial and "异常" in partial


def test_empty_and_error_states_read_in_chinese(client, db):
    assert "暂无服务：首次轮询成功后即会显示。" in body(client.get("/", **ZH))
    bad = client.get("/?page=abc&window=2h", **ZH)
    assert bad.status_code == 400
    text = body(bad)
    assert "此链接包含无法使用的参数：" in text
    assert "Enter a whole number" not in text and "Select a valid choice" not in text
    too_long = client.get("/?status=" + "x" * 40, **ZH)
    assert "最多 32 个字符。" in body(too_long)


def test_the_polls_page_reads_in_chinese(client, run):
    PollRun.objects.create(
        source=run.source,
        started_at=timezone.now(),
        ok=False,
        error_kind="auth",
        error_message="ModelArts.0202: token expired",
    )
    text = body(client.get("/polls/", **ZH))
    assert "<title>轮询 · ModelArts 服务监控</title>" in text
    assert ">轮询记录</h1>" in text
    assert '<span class="badge badge-ok">成功</span>' in text
    assert '<span class="badge badge-bad">失败</span>' in text
    assert "第 1–2 条，共 2 条" in text
    assert "ModelArts.0202: token expired" in text  # the API's words, as it sent them


def test_the_events_page_reads_in_chinese(client, run):
    text = body(client.get("/events/", **ZH))
    assert ">状态变更</h1>" in text
    assert "暂无状态变更：从第二次轮询起开始记录。" in text
    assert '<option value="appeared">新出现</option>' in text
    assert '<option value="failed">异常</option>' in text


def test_the_alerts_page_reads_in_chinese(client, make_service):
    service = make_service("bravo", "failed")
    rule = AlertRule.objects.create(
        name="failed-services", condition="statuses", statuses=["failed"]
    )
    Alert.objects.create(
        rule=rule,
        source=service.source,
        service=service,
        fingerprint=fingerprint(rule.name, service.source.name, service.service_id),
        labels={"service_id": service.service_id, "service_name": "bravo", "status": "failed"},
        annotations={},
        started_at=timezone.now() - timedelta(minutes=3),
        notified_at=timezone.now(),
    )
    text = body(client.get("/alerts/", **ZH))
    assert "触发中" in text and "3 分钟前" in text
    assert '<span class="badge badge-bad">异常</span>' in text
    assert ">确认</button>" in text
    assert "没有生效中或即将生效的静默。" in text and "最近没有恢复的告警。" in text
    assert ">新建静默</summary>" in text


def test_silence_form_errors_read_in_chinese(client, db):
    response = client.post("/alerts/silences", {"minutes": "0", "comment": ""}, **ZH)
    assert response.status_code == 400
    text = body(response)
    assert "静默未保存：" in text
    assert "请指定要静默的对象：服务 ID、数据源、所有者或规则。" in text
    assert "时长（分钟）：确保该值大于或等于1。" in text  # Django's own words, in its catalog
    assert "备注：这个字段是必填项。" in text
    assert "This field is required" not in text


def test_the_service_page_reads_in_chinese(client, make_service):
    service = make_service("bravo", "failed")
    text = body(client.get(f"/services/{service.service_id}/?source=fixture", **ZH))
    assert '<span class="badge badge-bad">异常</span>' in text
    assert "最新快照" in text and "状态时间线" in text and "← 全部服务" in text
    assert "原因：ModelArts 的说明" in text
    assert 'aria-label="bravo 的调用与失败次数"' in text
    missing = client.get("/services/nope/", **ZH)
    assert missing.status_code == 404
    assert "从未出现过 ID 为 &#x27;nope&#x27; 的服务。" in body(missing)
    bad = client.get(f"/services/{service.service_id}/?range=2w", **ZH)
    assert bad.status_code == 400 and "range 必须是 1h, 6h, 24h, 7d, 30d 之一" in body(bad)


def test_the_login_page_and_its_errors_read_in_chinese(anonymous_client, operator):
    page = anonymous_client.get("/login/", **ZH)
    assert html_lang_of(page) == "zh-Hans"
    assert ">登录</h1>" in body(page)
    wrong = anonymous_client.post("/login/", {"username": "ops", "password": "wrong"}, **ZH)
    assert "Please enter a correct" not in body(wrong)
    assert "密码" in body(wrong)


def test_the_login_throttle_says_so_in_chinese(anonymous_client, operator, settings):
    settings.LOGIN_FAILURES_PER_USER = 1
    anonymous_client.post("/login/", {"username": "ops", "password": "wrong"}, **ZH)
    response = anonymous_client.post("/login/", {"username": "ops", "password": "wrong"}, **ZH)
    assert response.status_code == 429
    assert "登录失败次数过多。请等待几分钟后再试。" in body(response)


def test_error_pages_read_in_chinese(client, db):
    missing = client.get("/no-such-page/", **ZH)
    assert missing.status_code == 404
    assert html_lang_of(missing) == "zh-Hans" and ">未找到</h1>" in body(missing)
    viewer = Client()
    viewer.force_login(create_user("viewer-two", "a-password-for-tests-only", "viewer"))
    refused = viewer.post("/refresh/", **ZH)
    assert refused.status_code == 403
    assert "按需轮询需要运维员（operator）角色。" in body(refused)
    assert "无权操作" in body(viewer.post("/views/save", {"name": "x"}, **ZH))
    english = viewer.post("/refresh/", **EN)
    assert "Polling on demand needs the operator role." in body(english)


def test_refresh_notes_read_in_chinese(client, source):
    response = client.post("/refresh/", headers={"HX-Request": "true"}, **ZH)
    assert "sim：已请求轮询" in body(response)


# Machine formats stay as they are


def test_json_and_csv_keep_english_keys_and_api_values(client, fleet_rows):
    data = client.get("/api/services?status=failed", **ZH).json()
    assert data["services"][0]["status"] == "failed"
    assert "failure_rate" in data["services"][0]
    export = client.get("/services.csv", **ZH)
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert {"service_id", "service_name", "status", "failure_rate"} <= set(rows[0])
    assert {row[rows[0].index("status")] for row in rows[1:]} >= {"failed", "running"}


# Dates and numbers


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_ages_and_countdowns_follow_the_language():
    with translation.override("zh-hans"):
        assert format.ago(NOW - timedelta(minutes=3), NOW) == "3 分钟前"
        assert format.ago(NOW - timedelta(days=4), NOW) == "4 天前"
        assert format.ago(NOW + timedelta(seconds=18), NOW) == "18 秒后"
        assert format.compact_duration(7200) == "2 小时"
    with translation.override("en"):
        assert format.ago(NOW - timedelta(minutes=3), NOW) == "3 min ago"
        assert format.ago(NOW + timedelta(seconds=18), NOW) == "in 18 s"


def test_numbers_and_percentages_follow_the_language():
    with translation.override("zh-hans"):
        # CLDR's Chinese grouping, as the Huawei Cloud console writes numbers.
        assert format.count(1_234_567) == "1,234,567"
        assert format.rate(0.2082) == "20.82%"
    with translation.override("en"):
        assert format.count(1_234_567) == "1,234,567"
        assert format.rate(0.00001) == "<0.01%"
    with translation.override("de"):  # a language with other separators: the locale decides
        assert format.count(1_234_567) == "1.234.567"
        assert format.rate(0.2082) == "20,82%"


def test_chart_labels_write_days_in_the_language():
    interval = charts.Interval(NOW, NOW + timedelta(minutes=5), 1200, 3)
    day = charts.Interval(NOW, NOW + timedelta(days=1), 1, 0, partial=True)
    with translation.override("zh-hans"):
        assert charts.calls_title(interval) == "1月1日 12:00–12:05 UTC：1,200 次调用，3 次失败"
        assert charts.rate_title(interval) == (
            "1月1日 12:00–12:05 UTC：失败率 0.25%（1,200 次调用中失败 3 次）"
        )
        assert charts.interval_label(day) == "1月1日（UTC 日）（截至目前）"
        assert charts.RANGES["1h"].step_label == "5 分钟"
    with translation.override("en"):
        assert charts.calls_title(interval) == "Jan 01 12:00–12:05 UTC: 1,200 calls, 3 failures"


def test_the_page_gives_its_script_the_words_of_its_language(client, db):
    text = body(client.get("/", **ZH))
    meta = re.search(r'<meta name="dashboard-text" content="([^"]*)">', text).group(1)
    assert "%(time)s前" in meta and "%(count)s 分钟" in meta and "已复制" in meta


# Alert messages: in the server's language, whoever sends them


def notification() -> Notification:
    line = AlertLine(
        state="firing",
        labels={"service_id": "svc-1", "service_name": "bravo", "status": "failed"},
        annotations={"previous_status": "running"},
        starts_at=NOW,
        ends_at=None,
        url="",
        fingerprint="f",
    )
    return Notification(rule="failed-services", alerts=(line,), external_url="", message_id="m")


def test_alert_messages_are_written_in_the_servers_language(settings):
    with translation.override("zh-hans"):  # a Chinese admin's request sends a test message
        assert messages.title(notification()) == "[FIRING 1] failed-services"
    settings.LANGUAGE_CODE = "zh-hans"
    text = messages.render(notification(), messages.PLAIN)
    assert text.startswith("[触发中 1] failed-services")
    assert "触发中：bravo · ID svc-1 · 运行中 → 异常" in text


def test_detector_help_follows_the_language(settings):
    from dashboard.web.columns import detector_help

    settings.DASHBOARD_STUCK_MINUTES = 15
    with translation.override("zh-hans"):
        assert detector_help()["stuck"] == ("卡住", "部署中，超过 15 分钟没有进展")


def test_the_readme_shows_a_screenshot_in_each_language():
    readme = (ROOT / "README.md").read_text()
    for name in ("services-en.png", "services-zh-hans.png"):
        assert f"docs/screenshots/{name}" in readme
        assert (ROOT / "docs" / "screenshots" / name).exists(), name


def test_a_known_user_without_a_preference_follows_the_browser(db):
    user = create_user("viewer-one", "a-password-for-tests-only", "viewer")
    browser = Client()
    browser.force_login(user)
    assert html_lang_of(browser.get("/", **ZH)) == "zh-Hans"
    assert html_lang_of(browser.get("/", **EN)) == "en"

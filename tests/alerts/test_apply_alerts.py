"""The alerts provisioning file: applied whole, or not at all, naming what is wrong."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import AlertChannel, AlertRule

GOOD = """
[[channel]]
name = "ops-ding"
kind = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=${TEST_DING_TOKEN}"
secret = "${TEST_DING_SECRET}"

[[channel]]
name = "mail"
kind = "email"
to = ["oncall@example.com"]

[[rule]]
name = "failed-services"
statuses = ["failed", "concerning"]
channels = ["ops-ding", "mail"]
repeat = "30m"

[[rule]]
name = "failing-now"
failure_rate = 0.5
window = "15m"
min_calls = 50
owners = ["team-a"]
service_name = "prod-*"
channels = ["mail"]

[[rule]]
name = "stale-data"
stale = true
repeat = "0"
channels = ["ops-ding"]
"""


@pytest.fixture
def secrets_in_env(monkeypatch):
    monkeypatch.setenv("TEST_DING_TOKEN", "ding-token-1234")
    monkeypatch.setenv("TEST_DING_SECRET", "SECabcdef")


def apply(tmp_path: Path, text: str) -> str:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    out = StringIO()
    call_command("apply_alerts", str(path), stdout=out)
    return out.getvalue()


def test_it_applies_channels_and_rules_with_secrets_from_the_environment(
    db, tmp_path, secrets_in_env
):
    said = apply(tmp_path, GOOD)
    assert said == "alerts: 2 channel(s) and 3 rule(s) applied, 0 removed\n"
    ding = AlertChannel.objects.get(name="ops-ding")
    assert ding.url.endswith("access_token=ding-token-1234") and ding.secret == "SECabcdef"
    failed = AlertRule.objects.get(name="failed-services")
    assert (failed.condition, failed.statuses, failed.repeat_seconds) == (
        "statuses",
        ["failed", "concerning"],
        1800,
    )
    assert sorted(c.name for c in failed.channels.all()) == ["mail", "ops-ding"]
    rate = AlertRule.objects.get(name="failing-now")
    assert (rate.failure_rate, rate.window, rate.min_calls) == (0.5, "15m", 50)
    assert (rate.owners, rate.name_glob) == (["team-a"], "prod-*")
    assert AlertRule.objects.get(name="stale-data").repeat_seconds == 0
    assert "ding-token-1234" not in said and "SECabcdef" not in said


def test_applying_again_updates_and_removes_what_the_file_no_longer_has(
    db, tmp_path, secrets_in_env
):
    apply(tmp_path, GOOD)
    AlertChannel.objects.create(name="made-in-admin", kind="slack", url="https://hooks.x/y")
    smaller = GOOD.split('[[rule]]\nname = "failing-now"')[0]
    said = apply(tmp_path, smaller)
    assert said == "alerts: 2 channel(s) and 1 rule(s) applied, 2 removed\n"
    assert sorted(AlertRule.objects.values_list("name", flat=True)) == ["failed-services"]
    assert AlertChannel.objects.filter(name="made-in-admin").exists()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (('window = "15m"', 'window = "2h"'), "rule 'failing-now'.window: one of 15m, 1h, 24h, 7d"),
        (("failure_rate = 0.5", "failure_rate = 1.5"), "failure_rate: a number from 0 to 1"),
        (('repeat = "30m"', 'repeat = "soon"'), "rule 'failed-services'.repeat"),
        (('kind = "email"', 'kind = "pager"'), "channel 'mail'.kind: one of webhook"),
        (('channels = ["mail"]', 'channels = ["nowhere"]'), "no channel named 'nowhere'"),
        (("stale = true", "stale = true\nstatuses = ['failed']"), "exactly one condition"),
        (('name = "stale-data"', 'name = "stale data!"'), "must be letters, digits"),
        (("min_calls = 50", "min_calls = 50\nsevere = true"), "unknown field 'severe'"),
        (("${TEST_DING_SECRET}", "${TEST_NOT_SET}"), "TEST_NOT_SET is not set"),
        (('to = ["oncall@example.com"]', 'to = ["not an address"]'), "channel 'mail'"),
        (("[[rule]]", "[[rules]]"), "unknown section 'rules'"),
        (('name = "mail"', 'name = "ops-ding"'), "channel 'ops-ding' is defined twice"),
        (('repeat = "0"', 'repeat = "0"\n[oops'), "not valid TOML"),
    ],
)
def test_a_bad_file_changes_nothing_and_names_the_field(db, tmp_path, secrets_in_env, change, says):
    apply(tmp_path, GOOD)
    before = sorted(AlertRule.objects.values_list("name", "repeat_seconds", "window"))
    with pytest.raises(CommandError) as caught:
        apply(tmp_path, GOOD.replace(*change))
    assert says in str(caught.value)
    assert "nothing applied" in str(caught.value)
    assert sorted(AlertRule.objects.values_list("name", "repeat_seconds", "window")) == before


def test_a_missing_file_says_so(db, tmp_path):
    with pytest.raises(CommandError, match="nothing applied"):
        call_command("apply_alerts", str(tmp_path / "missing.toml"))

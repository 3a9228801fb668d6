from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dashboard.models import Silence


def silence(*args: str) -> str:
    out = StringIO()
    call_command("silence", *args, stdout=out)
    return out.getvalue()


def test_it_silences_a_service_for_a_while(db):
    said = silence(
        "--service", "svc-1", "--minutes", "90", "--comment", "upgrading", "--author", "li"
    )
    made = Silence.objects.get()
    assert said.startswith(f"silence {made.pk} until ")
    assert (made.service_id, made.comment, made.author) == ("svc-1", "upgrading", "li")
    assert made.ends_at - made.starts_at == timedelta(minutes=90)


def test_it_combines_matchers(db):
    silence("--source", "cn-north-4", "--rule", "failing", "--comment", "region maintenance")
    made = Silence.objects.get()
    assert made.matches({"source": "cn-north-4"}, "failing")
    assert not made.matches({"source": "cn-north-4"}, "stale")
    assert not made.matches({"source": "ap-southeast-3"}, "failing")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--comment", "x"], "name what to silence"),
        (["--service", "s"], "--comment is required"),
        (["--service", "s", "--comment", "x", "--minutes", "0"], "--minutes must be"),
    ],
)
def test_it_refuses_a_silence_it_cannot_explain(db, args, says):
    with pytest.raises(CommandError, match=says):
        silence(*args)
    assert not Silence.objects.exists()


def test_it_lists_and_expires_silences(db):
    silence("--owner", "team-a", "--comment", "moving racks")
    pk = Silence.objects.get().pk
    assert "owner=team-a" in silence("--list") and "moving racks" in silence("--list")
    assert silence("--expire", str(pk)) == f"silence {pk} expired\n"
    assert Silence.objects.get().ends_at <= timezone.now()
    assert silence("--list") == "no active silence\n"
    with pytest.raises(CommandError, match=f"no active silence {pk}"):
        silence("--expire", str(pk))

"""/alerts/ and /api/alerts: what fires, what resolved lately, the silences and the deliveries;
and the operators' buttons: acknowledge an alert, start or expire a silence.

The web never sends a message: it reads the outbox the pollers' dispatcher works through.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.db.models.functions import Least
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_GET, require_POST

from dashboard.models import Alert, Silence
from dashboard.queries import alerts as queries
from dashboard.statuses import style_for
from dashboard.web.format import iso_utc
from dashboard.web.htmx import render_page, wants_partial
from dashboard.web.tokens import api_auth

MAX_SILENCE_MINUTES = 60 * 24 * 90  # as `manage.py silence` allows
MATCHERS = ("service_id", "source", "owner", "rule")


class SilenceForm(forms.Form):
    service_id = forms.CharField(label=gettext_lazy("Service id"), max_length=128, required=False)
    source = forms.CharField(label=gettext_lazy("Source"), max_length=64, required=False)
    owner = forms.CharField(label=gettext_lazy("Owner"), max_length=64, required=False)
    rule = forms.CharField(label=gettext_lazy("Rule"), max_length=64, required=False)
    minutes = forms.IntegerField(
        label=gettext_lazy("Duration (minutes)"),
        min_value=1,
        max_value=MAX_SILENCE_MINUTES,
        initial=60,
    )
    comment = forms.CharField(
        label=pgettext_lazy("silence", "Comment"),
        max_length=1000,
        widget=forms.TextInput(
            attrs={"placeholder": pgettext_lazy("silence comment", "why, for whoever sees it")}
        ),
    )

    def clean(self) -> dict:
        data = super().clean()
        # A silence with no matcher would match every alert: the whole dashboard goes quiet.
        if not any(data.get(name) for name in MATCHERS):
            raise forms.ValidationError(
                gettext("Name what to silence: a service id, source, owner or rule.")
            )
        return data


@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    return _page(request, SilenceForm())


def _page(
    request: HttpRequest, form: SilenceForm, *, status: int = 200, as_partial: bool | None = None
) -> HttpResponse:
    return render_page(
        request,
        "dashboard/alerts.html",
        "dashboard/_alerts.html",
        _context(form),
        status=status,
        as_partial=as_partial,
    )


def _context(form: SilenceForm) -> dict:
    now = timezone.now()
    silences = queries.silences(now)
    firing = queries.firing()
    return {
        "firing": [_firing_row(alert, silences, now) for alert in firing],
        "firing_total": queries.firing_total(),
        "resolved": [_alert_row(alert) for alert in queries.resolved()],
        "deliveries": queries.deliveries(),
        "silences": [_silence_row(silence, now) for silence in silences],
        "form": form,
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
        "section": "alerts",
    }


def _alert_row(alert: Alert) -> dict:
    labels = alert.labels
    source = alert.source.name
    service_id = labels.get("service_id", "")
    if service_id:
        link = f"/services/{quote(service_id, safe='')}/?{urlencode({'source': source})}"
        name = labels.get("service_name") or service_id
    else:  # a source's alert (stale data): its polls tell why
        link = f"/polls/?{urlencode({'source': source})}"
        name = gettext("%(source)s (source)") % {"source": source}
    status = labels.get("status", "")
    return {
        "alert": alert,
        "link": link,
        "name": name,
        "service_id": service_id,
        "source": source,
        "status": style_for(status) if status else None,
        # Pairs, not the dict: a template's `.items` would read a key named "items" first.
        "notes": sorted(alert.annotations.items()),
    }


def _firing_row(alert: Alert, silences: list[Silence], now: datetime) -> dict:
    silence = queries.matching_silence(alert, silences, now)
    return {**_alert_row(alert), "silence": silence, "silenced": alert.silenced or bool(silence)}


def _silence_row(silence: Silence, now: datetime) -> dict:
    matchers = [(name, getattr(silence, name)) for name in MATCHERS if getattr(silence, name)]
    return {"silence": silence, "matchers": matchers, "upcoming": silence.starts_at > now}


@require_POST
@permission_required("dashboard.change_alert", raise_exception=True)
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    """No more repeats of this alert until it resolves (the engine checks acknowledged_at)."""
    get_object_or_404(Alert, pk=pk)
    # The first acknowledgement stands; a resolved alert has nothing left to stop.
    Alert.objects.filter(pk=pk, resolved_at=None, acknowledged_at=None).update(
        acknowledged_at=timezone.now(), acknowledged_by=request.user.get_username()
    )
    return _back(request)


@require_POST
@permission_required("dashboard.add_silence", raise_exception=True)
def create_silence(request: HttpRequest) -> HttpResponse:
    form = SilenceForm(request.POST)
    if not form.is_valid():
        # The form lives on the full page only (outside the auto-refreshed part, so a refresh
        # never wipes what is being typed): its errors come back on the full page.
        return _page(request, form, status=400, as_partial=False)
    data, now = form.cleaned_data, timezone.now()
    Silence.objects.create(
        **{name: data[name] for name in MATCHERS},
        starts_at=now,
        ends_at=now + timedelta(minutes=data["minutes"]),
        comment=data["comment"],
        author=request.user.get_username(),
    )
    return _back(request)


@require_POST
@permission_required("dashboard.change_silence", raise_exception=True)
def expire_silence(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(Silence, pk=pk)
    now = timezone.now()
    # Ends now; one that had not begun keeps a zero-length window rather than ending first.
    Silence.objects.filter(pk=pk, ends_at__gt=now).update(
        starts_at=Least("starts_at", now), ends_at=now
    )
    return _back(request)


def _back(request: HttpRequest) -> HttpResponse:
    """After a button: the fresh partial for HTMX, else back to the page (303: as a GET)."""
    if wants_partial(request):
        return _page(request, SilenceForm(), as_partial=True)
    response = HttpResponseRedirect("/alerts/")
    response.status_code = 303
    return response


@require_GET
@api_auth
def api_alerts(request: HttpRequest) -> JsonResponse:
    """What /alerts/ shows of the alerts, as JSON."""
    now = timezone.now()
    silences = queries.silences(now)
    return JsonResponse(
        {
            "firing": [
                _alert_json(alert, bool(queries.matching_silence(alert, silences, now)))
                for alert in queries.firing()
            ],
            "resolved": [_alert_json(alert, False) for alert in queries.resolved()],
        }
    )


def _alert_json(alert: Alert, silenced_now: bool) -> dict:
    return {
        "id": alert.pk,
        "rule": alert.rule.name,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "started_at": iso_utc(alert.started_at),
        "resolved_at": iso_utc(alert.resolved_at),
        "silenced": alert.silenced or silenced_now,
        "acknowledged_at": iso_utc(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by or None,
        "fingerprint": alert.fingerprint,
    }

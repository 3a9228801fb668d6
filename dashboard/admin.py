from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils import timezone

from dashboard.alerts.channels import ChannelConfig, ChannelConfigError
from dashboard.alerts.conditions import check_rule
from dashboard.alerts.engine import FIRING, enqueue
from dashboard.models import (
    AlertChannel,
    AlertRule,
    Notification,
    OwnerName,
    PollRun,
    Service,
    Silence,
    Source,
)


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "endpoint", "project_id", "workspace_id", "auth_kind", "enabled"]
    list_filter = ["enabled", "auth_kind"]
    # Huawei's endpoints are all https; it is also Django 6's default.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["name", "enabled", "endpoint", "project_id", "workspace_id"]}),
        ("Polling", {"fields": ["interval_seconds", "offset_mode"]}),
        (
            "Signing in",
            {
                "description": (
                    "Secrets are never stored here: name the environment variables that hold "
                    "them (starting with MODELARTS_ or HUAWEICLOUD_). Every poller and web "
                    "worker needs them. Fill in the fields of the chosen kind only."
                ),
                "fields": [
                    "auth_kind",
                    ("ak_env", "sk_env", "security_token_env"),
                    "token_env",
                    ("iam_endpoint", "region"),
                    ("iam_domain", "iam_username", "password_env"),
                ],
            },
        ),
        (
            "State (kept by the pollers)",
            {
                "fields": [
                    "last_poll_at",
                    "last_success_at",
                    "failures_since_success",
                    "last_error",
                    "last_poll_complete",
                    "claimed_by",
                    "claim_expires_at",
                ]
            },
        ),
    ]
    readonly_fields = [
        "claimed_by",
        "claim_expires_at",
        "last_poll_at",
        "last_success_at",
        "failures_since_success",
        "last_error",
        "last_poll_complete",
    ]


@admin.register(PollRun)
class PollRunAdmin(admin.ModelAdmin):
    list_display = [
        "source", "started_at", "ok", "complete", "error_kind", "fetched_count", "duration_ms"
    ]  # fmt: skip
    list_filter = ["ok", "source"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    # The service table's columns, in its order (the benchmark sorts both by each of them).
    list_display = [
        "service_name",
        "service_id",
        "status",
        "infer_type",
        "owner",
        "invocation_times",
        "failed_times",
        "failure_rate",
        "calls_delta",
        "publish_at",
        "source",
    ]
    list_filter = ["status", "infer_type", "source"]
    search_fields = ["service_name", "service_id"]
    # Most urgent first, as the table opens.
    ordering = ["severity", "service_name"]
    list_per_page = 50

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# Written, never shown again: WeCom's key and DingTalk's token ride in the URL's query.
CHANNEL_SECRETS = ("url", "secret", "ak", "sk")


def masked_url(url: str) -> str:
    """Scheme and host only: paths and queries may carry keys, user info a password."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(hidden)"
    if not parts.scheme or not parts.hostname:
        return "(hidden)" if url else "—"
    return f"{parts.scheme}://{parts.hostname}{port}/…"


class AlertChannelForm(forms.ModelForm):
    clear = forms.MultipleChoiceField(
        label="Clear stored",
        required=False,
        choices=[(name, name) for name in CHANNEL_SECRETS],
        widget=forms.CheckboxSelectMultiple,
        help_text="Blank secret fields keep what is stored; tick one here to erase it.",
    )

    class Meta:
        model = AlertChannel
        fields = [
            "name", "kind", "enabled", "url", "secret", "to", "project_id", "topic_urn", "ak", "sk"
        ]  # fmt: skip
        # render_value=False: not even a failed save sends a secret back to the browser.
        widgets = {name: forms.PasswordInput(render_value=False) for name in CHANNEL_SECRETS}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for name in CHANNEL_SECRETS:
            if name not in self.fields:
                continue  # a read-only page: the admin left the field out
            stored = getattr(self.instance, name)
            self.fields[name].widget.attrs["autocomplete"] = "off"
            if stored:
                where = f" ({masked_url(stored)})" if name == "url" else ""
                self.fields[name].help_text = f"Stored{where}, hidden. Leave blank to keep it."

    def clean(self) -> dict:
        data = super().clean()
        cleared = set(data.get("clear") or ())
        for name in CHANNEL_SECRETS:
            if not data.get(name) and name not in cleared and name not in self.errors:
                data[name] = getattr(self.instance, name)  # left blank: keep what is stored
        data["to"] = to = data.get("to") or []
        if not isinstance(to, list) or not all(isinstance(a, str) for a in to):
            self.add_error("to", 'A list of addresses, like ["ops@example.com"].')
        if self.errors:
            return data
        named = ("name", "kind", "project_id", "topic_urn", *CHANNEL_SECRETS)
        config = {key: data.get(key) or "" for key in named}
        try:
            ChannelConfig(to=tuple(to), **config).validate()
        except ChannelConfigError as exc:
            # Its messages never quote a secret or the URL.
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, str(exc))
        return data


def sample_line(now: datetime) -> dict:
    """A made-up alert shaped like engine.line()'s, for a channel's test message."""
    base = settings.DASHBOARD_BASE_URL
    return {
        "state": FIRING,
        "labels": {
            "alertname": "test",
            "service_id": "test",
            "service_name": "test message from the dashboard",
            "status": "test",
            "source": "dashboard",
            "owner": "",
        },
        "annotations": {"summary": "A test message from the dashboard: this channel works."},
        "starts_at": now.isoformat(),
        "ends_at": None,
        "url": f"{base}/alerts/" if base else "",
        # Each test its own alert, so a receiver that groups or dedups shows every one.
        "fingerprint": uuid.uuid4().hex[:16],
    }


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    form = AlertChannelForm
    list_display = ["name", "kind", "shown_url", "enabled", "provisioned"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]  # never the URL: a search would answer questions about its key
    readonly_fields = ["provisioned"]
    actions = ["send_test_message"]
    change_form_template = "admin/dashboard/alertchannel/change_form.html"

    @admin.display(description="URL")
    def shown_url(self, channel: AlertChannel) -> str:
        return masked_url(channel.url)

    @admin.display(description="Stored secrets")
    def stored_secrets(self, channel: AlertChannel) -> str:
        return ", ".join(name for name in CHANNEL_SECRETS if getattr(channel, name)) or "none"

    def get_fields(self, request: HttpRequest, obj: AlertChannel | None = None) -> list[str]:
        if self.has_change_permission(request, obj) or obj is None:
            return [*self.form.Meta.fields, "clear", "provisioned"]
        # Read-only pages show every field's value as text: never the secrets'.
        shown = [name for name in self.form.Meta.fields if name not in CHANNEL_SECRETS]
        return [*shown, "shown_url", "stored_secrets", "provisioned"]

    def get_readonly_fields(self, request: HttpRequest, obj: AlertChannel | None = None):
        if obj is not None and not self.has_change_permission(request, obj):
            return self.get_fields(request, obj)
        return self.readonly_fields

    def has_test_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("dashboard.test_alertchannel")

    @admin.action(description="Send a test message", permissions=["test"])
    def send_test_message(self, request: HttpRequest, queryset) -> None:
        for channel in queryset:
            self._queue_test(request, channel)

    def _queue_test(self, request: HttpRequest, channel: AlertChannel) -> None:
        # Queued, not sent: the pollers' dispatcher delivers it, retries and records the answer.
        now = timezone.now()
        enqueue(channel, "test", [sample_line(now)], now)
        self.message_user(
            request,
            f"Test message to {channel.name} queued; see /alerts/ for the delivery.",
            messages.SUCCESS,
        )

    def get_urls(self) -> list:
        test = self.admin_site.admin_view(self.send_test_view)
        return [
            path("<int:pk>/test/", test, name="dashboard_alertchannel_test"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None):
        # The channel's page has the button too: in the page's tools, outside the change form,
        # so Enter in a field still saves.
        extra_context = {
            **(extra_context or {}),
            "can_send_test": self.has_test_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def send_test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_test_permission(request):
            raise PermissionDenied
        self._queue_test(request, get_object_or_404(AlertChannel, pk=pk))
        return redirect("admin:dashboard_alertchannel_change", pk)


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        exclude = ["provisioned"]

    def clean(self) -> dict:
        data = super().clean()
        for name in ("statuses", "sources", "owners", "types"):
            value = data.get(name)
            if value is not None and not (
                isinstance(value, list) and all(isinstance(v, str) and v for v in value)
            ):
                self.add_error(name, 'A list of names, like ["failed"].')
        if self.errors:
            return data
        fields = {f.name: data[f.name] for f in AlertRule._meta.concrete_fields if f.name in data}
        for problem in check_rule(AlertRule(**fields)):
            # "window: one of 15m, 1h, …": the message goes beside the field it names.
            field, _, message = problem.partition(": ")
            if field in self.fields and message:
                self.add_error(field, message[:1].upper() + message[1:])
            else:
                self.add_error(None, problem)
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    form = AlertRuleForm
    list_display = ["name", "condition", "channel_names", "repeat_seconds", "enabled"]
    list_filter = ["enabled", "condition"]
    search_fields = ["name"]
    filter_horizontal = ["channels"]
    readonly_fields = ["provisioned"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("channels")

    @admin.display(description="Channels")
    def channel_names(self, rule: AlertRule) -> str:
        return ", ".join(channel.name for channel in rule.channels.all()) or "—"


class SilenceForm(forms.ModelForm):
    class Meta:
        model = Silence
        fields = ["service_id", "source", "owner", "rule", "starts_at", "ends_at", "comment"]

    def clean(self) -> dict:
        data = super().clean()
        # With no matcher a silence matches every alert.
        if not any(data.get(name) for name in ("service_id", "source", "owner", "rule")):
            raise forms.ValidationError(
                "Name what to silence: a service id, source, owner or rule."
            )
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "Must be after the start.")
        return data


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    form = SilenceForm
    list_display = ["pk", "service_id", "source", "owner", "rule", "starts_at", "ends_at", "author"]
    list_filter = ["source", "rule"]
    search_fields = ["service_id", "owner", "comment", "author"]
    readonly_fields = ["author", "created_at"]

    def save_model(self, request: HttpRequest, obj: Silence, form, change: bool) -> None:
        if not change:
            obj.author = request.user.get_username()
        super().save_model(request, obj, form, change)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = [
        "created_at", "channel", "rule", "state", "attempts", "last_status_code", "next_attempt_at"
    ]  # fmt: skip
    list_filter = ["state", "channel"]
    list_select_related = ["channel"]
    search_fields = ["rule", "message_id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(OwnerName)
class OwnerNameAdmin(admin.ModelAdmin):
    """Who each owner id is: shown in the table, its owner filter, the API and the CSV."""

    list_display = ["owner_id", "name"]
    search_fields = ["owner_id", "name"]

from __future__ import annotations

from django.contrib import admin
from django.db import models

from dashboard.models import PollRun, Service, Source


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

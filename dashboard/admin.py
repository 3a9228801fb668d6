from __future__ import annotations

from django.contrib import admin

from dashboard.models import PollRun, Service, Source


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "endpoint", "project_id", "workspace_id", "auth_kind", "enabled"]
    list_filter = ["enabled", "auth_kind"]
    readonly_fields = [
        "claimed_by",
        "claim_expires_at",
        "last_poll_at",
        "last_success_at",
        "failures_since_success",
        "last_error",
    ]


@admin.register(PollRun)
class PollRunAdmin(admin.ModelAdmin):
    list_display = ["source", "started_at", "ok", "error_kind", "fetched_count", "duration_ms"]
    list_filter = ["ok", "source"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["service_name", "service_id", "status", "infer_type", "owner", "source"]
    list_filter = ["status", "infer_type", "source"]
    search_fields = ["service_name", "service_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

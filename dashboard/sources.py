"""The source configured by MODELARTS_* environment variables, kept in step with its row."""

from __future__ import annotations

from django.conf import settings

from dashboard.models import Source


def sync_env_source() -> Source | None:
    """Create or update the row of the environment-configured source; None when there is none.

    The row holds only the name of the variable with the token, never the token.
    """
    if not settings.MODELARTS_ENDPOINT:
        return None
    source, _ = Source.objects.update_or_create(
        name=settings.MODELARTS_SOURCE_NAME,
        defaults={
            "endpoint": settings.MODELARTS_ENDPOINT.rstrip("/"),
            "project_id": settings.MODELARTS_PROJECT_ID,
            "workspace_id": settings.MODELARTS_WORKSPACE_ID,
            "auth_kind": Source.AuthKind.TOKEN,
            "token_env": "MODELARTS_TOKEN",
            "interval_seconds": settings.MODELARTS_POLL_INTERVAL,
            "enabled": True,
        },
    )
    return source

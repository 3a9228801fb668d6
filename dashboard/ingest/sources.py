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
    config = {
        "endpoint": settings.MODELARTS_ENDPOINT.rstrip("/"),
        "project_id": settings.MODELARTS_PROJECT_ID,
        "workspace_id": settings.MODELARTS_WORKSPACE_ID,
        "offset_mode": settings.MODELARTS_OFFSET_MODE,
        "enabled": True,
        "auth_kind": settings.MODELARTS_AUTH,
        # The variables' names only: the values are read when a poll starts.
        "token_env": "MODELARTS_TOKEN",
        "ak_env": "MODELARTS_AK",
        "sk_env": "MODELARTS_SK",
        "security_token_env": "MODELARTS_SECURITY_TOKEN",
        "password_env": "HUAWEICLOUD_PASSWORD",
        "iam_endpoint": settings.HUAWEICLOUD_IAM_ENDPOINT,
        "iam_domain": settings.HUAWEICLOUD_DOMAIN,
        "iam_username": settings.HUAWEICLOUD_USERNAME,
        "region": settings.MODELARTS_REGION,
    }
    source, _ = Source.objects.update_or_create(
        name=settings.MODELARTS_SOURCE_NAME,
        defaults=config,
        # The interval is set once: afterwards the admin or `poll_services --interval` own it.
        create_defaults={**config, "interval_seconds": settings.MODELARTS_POLL_INTERVAL},
    )
    return source

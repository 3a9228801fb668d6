from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "ModelArts dashboard"

    def ready(self) -> None:
        from dashboard.web.accounts import sync_roles

        post_migrate.connect(sync_roles, sender=self)

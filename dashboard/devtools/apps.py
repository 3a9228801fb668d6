from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    name = "dashboard.devtools"
    label = "devtools"
    verbose_name = "ModelArts dashboard: simulator, demo and benchmarks"

from django.contrib import admin
from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.service_list, name="services"),
    path("refresh/", views.refresh, name="refresh"),
    path("api/services", views.api_services, name="api-services"),
    path("polls/", views.poll_list, name="polls"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]

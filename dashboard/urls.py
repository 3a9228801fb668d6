from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import path

from dashboard.web import (
    alerts,
    events,
    health,
    metrics,
    polls,
    saved_views,
    service_page,
    services,
    tokens,
)
from dashboard.web.accounts import ThrottledLoginView
from dashboard.web.language import set_language

urlpatterns = [
    path("", services.service_list, name="services"),
    path("refresh/", services.refresh, name="refresh"),
    path("api/services", services.api_services, name="api-services"),
    path("services.csv", services.services_csv, name="services-csv"),
    path("services.json", services.services_json, name="services-json"),
    path("polls/", polls.poll_list, name="polls"),
    path("services/<str:service_id>/", service_page.service_detail, name="service"),
    path("services/<str:service_id>/detail", service_page.request_detail, name="request-detail"),
    path("events/", events.event_list, name="events"),
    path("api/events", events.api_events, name="api-events"),
    path("alerts/", alerts.alert_list, name="alerts"),
    path("alerts/<int:pk>/ack", alerts.acknowledge, name="acknowledge-alert"),
    path("alerts/silences", alerts.create_silence, name="create-silence"),
    path("alerts/silences/<int:pk>/expire", alerts.expire_silence, name="expire-silence"),
    path("api/alerts", alerts.api_alerts, name="api-alerts"),
    path("views/", saved_views.saved_view_list, name="saved-views"),
    path("views/save", saved_views.save_view, name="save-view"),
    path("views/<slug:slug>/delete", saved_views.delete_view, name="delete-view"),
    path("views/<slug:slug>/share", saved_views.share_view, name="share-view"),
    path("v/<slug:slug>", saved_views.open_saved_view, name="open-view"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("account/tokens/", tokens.token_list, name="tokens"),
    path("account/tokens/<int:pk>/revoke", tokens.revoke_token, name="revoke-token"),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("language/", set_language, name="set-language"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]

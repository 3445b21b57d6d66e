from django.contrib import admin
from django.urls import include, path

from apps.core.views import healthz, metrics

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/widget/", include("apps.customers.urls")),
    path("webhooks/", include("apps.webhooks.urls")),
    path("console/", include("apps.console.urls")),
    path("", include("apps.widget.urls")),
]

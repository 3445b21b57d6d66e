from django.contrib import admin
from django.urls import include, path

from apps.core.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/widget/", include("apps.customers.urls")),
    path("webhooks/", include("apps.webhooks.urls")),
    path("console/", include("apps.console.urls")),
    path("", include("apps.widget.urls")),
]

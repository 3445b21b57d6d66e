from django.contrib import admin
from django.urls import include, path

from apps.core.views import healthz, metrics
from apps.identity import views as identity_views

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/login/", identity_views.admin_login),  # follows LOCAL_LOGIN_ENABLED
    path("admin/", admin.site.urls),
    path("oidc/", include("apps.identity.urls")),
    path("api/widget/", include("apps.customers.urls")),
    path("webhooks/", include("apps.webhooks.urls")),
    path("", include("apps.reports.urls")),  # /console/reports/, /api/reports/summary
    path("console/", include("apps.privacy.urls")),  # audit log, customers' data (admins)
    path("console/", include("apps.console.urls")),
    path("", include("apps.widget.urls")),
]

from django.urls import path

from . import api, views

app_name = "reports"
urlpatterns = [
    path("console/reports/", views.reports_page, name="page"),
    path("console/reports/csv/<str:table>/", views.reports_csv, name="csv"),
    path("console/reports/assets/<path:name>", views.asset, name="asset"),
    path("api/reports/summary", api.summary_view, name="summary"),
]

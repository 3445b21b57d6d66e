from django.urls import path

from . import views

app_name = "privacy"
urlpatterns = [
    path("audit/", views.audit_page, name="audit"),
    path("audit/export.csv", views.audit_csv, name="audit_csv"),
    path("customers/<uuid:customer_id>/", views.customer_page, name="customer"),
    path("customers/<uuid:customer_id>/export/", views.customer_export_view, name="customer_export"),
    path("customers/<uuid:customer_id>/erase/", views.customer_erase_view, name="customer_erase"),
]

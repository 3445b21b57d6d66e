from django.conf import settings
from django.urls import path

from apps.widget import views

app_name = "widget"

urlpatterns = [
    path("widget/i18n/<str:lang>.json", views.widget_catalog, name="catalog"),
    path("widget/<str:name>", views.widget_asset, name="asset"),
]
# The fictional demo shop signs visitors in as demo customers: development only.
if settings.KEFU_DEMO_PAGES:
    urlpatterns.append(path("", views.demo_shop, name="demo-shop"))

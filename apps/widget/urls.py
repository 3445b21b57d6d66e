from django.urls import path

from apps.widget import views

app_name = "widget"

urlpatterns = [
    path("", views.demo_shop, name="demo-shop"),
    path("widget/<str:name>", views.widget_asset, name="asset"),
]

from django.urls import path

from .views import webhook_intake

app_name = "webhooks"
urlpatterns = [
    path("<slug:connector>/", webhook_intake, name="intake"),
]

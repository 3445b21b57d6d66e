from django.urls import path

from .views import widget_session

urlpatterns = [path("session", widget_session, name="widget-session")]

from django.contrib.auth import views as auth_views
from django.urls import path

from . import gap_views, views

app_name = "console"
urlpatterns = [
    path("", views.queue_page, name="queue"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="registration/login.html", next_page="console:queue"),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="console:login"), name="logout"),
    path("c/<uuid:conversation_id>/", views.conversation_page, name="conversation"),
    path("c/<uuid:conversation_id>/crm/", views.conversation_crm, name="crm"),
    path("c/<uuid:conversation_id>/<str:action>/", views.conversation_action, name="action"),
    path("assets/<str:name>", views.asset, name="asset"),
    path("gaps/", gap_views.gaps_page, name="gaps"),
    path("gaps/publish/", gap_views.gap_publish_view, name="gap_publish"),
    path("gaps/<uuid:question_id>/", gap_views.gaps_page, name="gap"),
    path("gaps/<uuid:question_id>/draft/", gap_views.gap_draft_page, name="gap_draft"),
]

from django.urls import path
from django.views.i18n import JavaScriptCatalog

from . import gap_views, login, views
from .language import agent_language_view

app_name = "console"
urlpatterns = [
    path("", views.queue_page, name="queue"),
    path("login/", login.ConsoleLoginView.as_view(), name="login"),
    path("logout/", login.ConsoleLogoutView.as_view(), name="logout"),
    path("c/<uuid:conversation_id>/", views.conversation_page, name="conversation"),
    path("c/<uuid:conversation_id>/crm/", views.conversation_crm, name="crm"),
    path("c/<uuid:conversation_id>/<str:action>/", views.conversation_action, name="action"),
    path("assets/<str:name>", views.asset, name="asset"),
    path("language/", agent_language_view, name="language"),
    # console.js's strings (`gettext`), in the agent's language like the pages.
    path("jsi18n/", views.staff_required(JavaScriptCatalog.as_view()), name="jsi18n"),
    path("gaps/", gap_views.gaps_page, name="gaps"),
    path("gaps/publish/", gap_views.gap_publish_view, name="gap_publish"),
    path("gaps/<uuid:question_id>/", gap_views.gaps_page, name="gap"),
    path("gaps/<uuid:question_id>/draft/", gap_views.gap_draft_page, name="gap_draft"),
]

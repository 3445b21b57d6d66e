from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.conversations.models import ConversationState
from apps.realtime.schemas import MAX_TEXT


class QueueFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    state = forms.ChoiceField(
        required=False, choices=[("", _("Any state")), *ConversationState.choices], label=_("State")
    )
    assignee = forms.CharField(required=False, max_length=20, label="Assignee")
    closed = forms.BooleanField(required=False, label="Show closed")


class AssignForm(forms.Form):
    agent_id = forms.IntegerField(min_value=1)


class TeamForm(forms.Form):
    team_id = forms.IntegerField(min_value=1, required=False)  # empty: no team


class TextForm(forms.Form):
    client_msg_id = forms.UUIDField(widget=forms.HiddenInput)
    text = forms.CharField(max_length=MAX_TEXT, strip=False)

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError("Write something first.")
        return text

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django import forms
from django.utils import timezone


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=200)
    action = forms.CharField(required=False, max_length=100)
    target = forms.CharField(required=False, max_length=100)
    since = forms.DateField(required=False, help_text="From this day (UTC)")
    until = forms.DateField(required=False, help_text="To this day, included (UTC)")

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        data = self.cleaned_data

        def day(value, extra: int = 0):  # noqa: ANN001, ANN202
            return (
                None
                if value is None
                else timezone.make_aware(datetime.combine(value + timedelta(days=extra), time.min), UTC)
            )

        return {
            "actor": data["actor"],
            "action": data["action"],
            "target": data["target"],
            "since": day(data["since"]),
            "until": day(data["until"], 1),
        }


class EraseForm(forms.Form):
    confirm = forms.BooleanField(label="I understand that this cannot be undone")

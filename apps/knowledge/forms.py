from django import forms

from .models import KnowledgeBase


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        items = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in items]


class DocumentUploadForm(forms.Form):
    knowledge_base = forms.ModelChoiceField(
        queryset=KnowledgeBase.objects.all(),
        required=False,
        help_text="Leave empty for the default knowledge base.",
    )
    files = MultipleFileField(
        help_text="Markdown, text, HTML or PDF files. Re-uploading a file "
        "with the same name replaces that document."
    )

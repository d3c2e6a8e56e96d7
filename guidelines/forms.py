from django import forms
from django.utils.translation import gettext_lazy as _

from .models import LANGUAGE_CHOICES, Acknowledgement


class AcknowledgeForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, widget=forms.HiddenInput)
    channel = forms.ChoiceField(choices=Acknowledgement.Channel.choices, widget=forms.HiddenInput)
    # The template labels the checkbox with the exact statement that will be stored.
    confirm = forms.BooleanField(
        error_messages={"required": _("Please tick the box to confirm that you have read and understood it.")},
    )

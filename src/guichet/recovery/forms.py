"""Forms of the recovery screens: they parse what an agent types; the services decide."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django import forms
from django.utils.translation import gettext_lazy as _

from guichet.bookings.models import Activity, Basket, Site, Unit
from guichet.common.money import MoneyError, parse_euros

from .models import PaperForm

PARIS = ZoneInfo("Europe/Paris")


class _PaperBase(forms.Form):
    series = forms.CharField(label=_("Series (form book)"), max_length=20,
                             help_text=_("As printed on the form, e.g. A or 2024-ALSH."))
    number = forms.IntegerField(label=_("Form number"), min_value=1, max_value=999_999_999)
    received_on = forms.DateField(label=_("Date written on the form"), widget=forms.DateInput(attrs={"type": "date"}))
    received_time = forms.TimeField(label=_("Time written on the form"),
                                    widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                                    help_text=_("Paris time. Unknown: the counter's opening time that day."))
    household = forms.CharField(label=_("Family file number"), max_length=30)
    duplicate = forms.BooleanField(
        label=_("Another form already carries this number: keep this one too (reported as a duplicate)"),
        required=False)

    def received_at(self) -> dt.datetime:
        d, t = self.cleaned_data["received_on"], self.cleaned_data["received_time"]
        return dt.datetime.combine(d, t).replace(tzinfo=PARIS)


class PaperBookingForm(_PaperBase):
    activity = forms.ModelChoiceField(label=_("Activity"), queryset=Activity.objects.none())
    site = forms.ModelChoiceField(label=_("Centre"), queryset=Site.objects.none())
    children = forms.CharField(label=_("Children (first names)"), max_length=200,
                               help_text=_("Separate them with commas, e.g. Léa, Tom."))
    dates = forms.CharField(label=_("Days asked for"), widget=forms.Textarea(attrs={"rows": 3}),
                            help_text=_("One per line or separated by commas, e.g. 2024-07-10 or 10/07/2024."))
    unit = forms.ChoiceField(label=_("Choice"), help_text=_("What the form asks for each day."))
    mode = forms.ChoiceField(label=_("If some days are full"), choices=Basket.Mode.choices,
                             initial=Basket.Mode.PARTIAL)

    field_order = ["series", "number", "received_on", "received_time", "household", "activity", "site",
                   "children", "dates", "unit", "mode", "duplicate"]

    def __init__(self, *args, organisation, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["activity"].queryset = Activity.objects.filter(organisation=organisation)
        self.fields["site"].queryset = Site.objects.filter(organisation=organisation)
        units = Unit.objects.filter(organisation=organisation).select_related("activity").order_by(
            "activity__position", "activity__pk", "position")
        self.fields["unit"].choices = [("", "---------")] + [
            (u.code, f"{u.tr('name')} ({u.activity.tr('name')})") for u in units]

    def clean_dates(self):
        from .services import _parse_date

        out = []
        for part in self.cleaned_data["dates"].replace(",", "\n").split():
            day = _parse_date(part)
            if day is None:
                raise forms.ValidationError(_("“%(text)s” is not a date: write 2024-07-10 or 10/07/2024."),
                                            params={"text": part[:20]})
            out.append(day)
        if not out:
            raise forms.ValidationError(_("Write at least one day."))
        return sorted(set(out))

    def clean_children(self):
        names = [n.strip() for n in self.cleaned_data["children"].split(",") if n.strip()]
        if not names:
            raise forms.ValidationError(_("Write at least one first name."))
        return names


class PaperDepositForm(_PaperBase):
    amount = forms.CharField(label=_("Amount (euros)"), max_length=20, help_text=_("e.g. 45 or 45,50"))
    method = forms.ChoiceField(label=_("Paid by"), choices=[
        ("cash", _("Cash")), ("cheque", _("Cheque")), ("card", _("Card at the counter"))])
    reference = forms.CharField(label=_("Cheque number or card receipt"), max_length=40, required=False)

    field_order = ["series", "number", "received_on", "received_time", "household", "amount", "method",
                   "reference", "duplicate"]

    def clean_amount(self):
        try:
            cents = parse_euros(self.cleaned_data["amount"])
        except MoneyError:
            raise forms.ValidationError(_("Write an amount in euros, e.g. 45 or 45,50.")) from None
        if cents <= 0:
            raise forms.ValidationError(_("The amount must be more than 0."))
        return cents


class PaperVoidForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind of form"), choices=PaperForm.Kind.choices)
    series = forms.CharField(label=_("Series (form book)"), max_length=20)
    number = forms.IntegerField(label=_("Form number"), min_value=1, max_value=999_999_999)
    reason = forms.CharField(label=_("Why is this number void?"), max_length=200,
                             help_text=_("e.g. form torn, never used, cancelled by the family."))


class PaperImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file of paper booking forms"), required=False)
    text = forms.CharField(label=_("Or paste its content"), widget=forms.Textarea(attrs={"rows": 6}), required=False)
    mode = forms.ChoiceField(label=_("If some days are full"), choices=Basket.Mode.choices,
                             initial=Basket.Mode.PARTIAL)

    MAX_BYTES = 2_000_000

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload:
            if upload.size > self.MAX_BYTES:
                raise forms.ValidationError(_("The file is too large (2 MB at most)."))
            try:
                data["content"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise forms.ValidationError(_("The file is not UTF-8 text: save it as CSV UTF-8.")) from None
        elif data.get("text", "").strip():
            data["content"] = data["text"]
        else:
            raise forms.ValidationError(_("Choose a file or paste its content."))
        return data

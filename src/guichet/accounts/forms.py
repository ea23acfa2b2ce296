from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"), max_length=20, strip=True,
        help_text=_("The six digits shown by your authenticator app, or one of your recovery codes."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text",
                                      "autocapitalize": "none", "spellcheck": "false"}),
    )


class SetupCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code shown by the app"), max_length=10, strip=True,
        help_text=_("Six digits, e.g. 123456."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class SignupForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(label=_("Password"), strip=False,
                                help_text=_("At least 10 characters; a sentence is easy to remember."),
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label=_("Password again"), strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()

    def clean(self):
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords differ."))
        elif p1:
            probe = get_user_model()(username=data.get("email", ""), email=data.get("email", ""))
            try:
                validate_password(p1, probe)
            except ValidationError as e:
                self.add_error("password1", e)
        return data


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("The other guardian's e-mail address"), max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "off"}))

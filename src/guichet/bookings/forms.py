"""Forms of the family portal and the agents' screens. They only validate input; every write
goes through ``guichet.bookings.services``."""

from __future__ import annotations

import uuid

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import Basket, Justification, Unit

MAX_UPLOAD_BYTES = 5 * 1024 * 1024

# What a file really is, read from its first bytes (never trust the name or the browser's type).
SIGNATURES = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
)
ALLOWED_EXTENSIONS = {".pdf", ".jpg", ".jpeg", ".png"}


def sniff(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a PDF, JPEG or PNG from its first bytes, or None."""
    for magic, content_type, ext in SIGNATURES:
        if head.startswith(magic):
            return content_type, ext
    return None


def validate_document(upload) -> tuple[str, str]:
    """Checks an uploaded justification: PDF, JPEG or PNG by content, at most 5 MB."""
    if upload.size > MAX_UPLOAD_BYTES:
        raise ValidationError(
            _("The file is too large (%(size)s MB); the limit is 5 MB.") % {"size": round(upload.size / 1048576, 1)},
            code="too_large",
        )
    if upload.size == 0:
        raise ValidationError(_("The file is empty."), code="empty")
    name = (upload.name or "").lower()
    ext = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    kind = sniff(head)
    if kind is None or ext not in ALLOWED_EXTENSIONS:
        raise ValidationError(_("Only PDF, JPEG or PNG files are accepted."), code="bad_type")
    if kind[0].startswith("image/"):
        try:
            from PIL import Image

            with Image.open(upload) as img:
                img.verify()
        except Exception as exc:  # noqa: BLE001 - any decoding error means "not a real image"
            raise ValidationError(_("This image cannot be read. Please send another file."), code="bad_image") from exc
        finally:
            upload.seek(0)
    # The name the family gave the file ("certificat-Lea-Dupont.pdf") is not kept: stored under a
    # random name with the extension of what the file really is, it names nobody in the media
    # folder, the database or a backup's manifest.
    upload.name = f"{uuid.uuid4().hex}{kind[1]}"
    return kind


def new_key() -> str:
    return uuid.uuid4().hex


class BasketModeForm(forms.Form):
    """The choices around a basket; its items come from the calendar's selects.

    The family chooses the mode itself: nothing is preselected (a preselected "all or nothing"
    kept parents off the waiting list they thought they had asked for), and each choice says
    what happens to a full day. "All or nothing" never puts anyone on a waiting list: a waiting
    list is per day, and holding a whole week for a family until its last full day frees up
    would keep places from other families (docs/guide-parents.md, "Si un jour est complet")."""

    mode = forms.ChoiceField(
        label=_("If a day you chose is full"),
        choices=[
            (Basket.Mode.PARTIAL, _("Book the days that are available and put the full days on the waiting list")),
            (Basket.Mode.ALL_OR_NOTHING,
             _("Book only if every day is available: if one day is full, nothing is booked and nothing is put "
               "on the waiting list")),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose what to do if some days are full.")},
    )
    idempotency_key = forms.CharField(max_length=100, widget=forms.HiddenInput)


class JustificationForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind of document"), choices=Justification.Kind.choices, widget=forms.RadioSelect)
    document = forms.FileField(
        label=_("Document (PDF, JPEG or PNG, 5 MB at most)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"}),
    )

    def clean_document(self):
        upload = self.cleaned_data["document"]
        validate_document(upload)
        return upload


class AgentJustificationForm(JustificationForm):
    document = forms.FileField(
        label=_("Document (PDF, JPEG or PNG, 5 MB at most)"), required=False,
        help_text=_("Optional when the paper original was seen at the counter."),
    )

    def clean_document(self):
        upload = self.cleaned_data.get("document")
        if upload:
            validate_document(upload)
        return upload


class UnitChoiceField(forms.ModelChoiceField):
    """A unit chosen from a list by its name in the page's language ("Matin + repas" /
    "Morning + meal"); the posted value is the unit's code, unique within its activity."""

    def label_from_instance(self, obj: Unit) -> str:
        return obj.tr("name")


class AgentBookForm(forms.Form):
    """An agent books a day for a child of the family, on paper or on the phone: the child and
    the unit are chosen from lists, never typed. ``units`` are those of the session's activity
    (another activity's unit, or a typed code, is refused with a message naming the field)."""

    child = forms.TypedChoiceField(
        label=_("Child"), coerce=int,
        error_messages={"required": _("Choose a child."), "invalid_choice": _("Choose one of this family's children.")},
    )
    session = forms.IntegerField(label=_("Session number"), min_value=1, widget=forms.HiddenInput)
    unit = UnitChoiceField(
        label=_("Unit"), queryset=Unit.objects.none(), to_field_name="code", empty_label=None,
        error_messages={"required": _("Choose a unit."),
                        "invalid_choice": _("Choose one of the units offered on this day.")},
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=300, required=False,
        help_text=_("Required after the booking deadline."),
    )

    def __init__(self, *args, children=(), units=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["child"].choices = [(c.pk, c.first_name) for c in children]
        if units is not None:
            self.fields["unit"].queryset = units

    def error_text(self) -> str:
        """Every error in one sentence per field, each naming its field ("Unit: ...")."""
        out = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else ""
            out += [gettext("%(field)s: %(error)s") % {"field": label, "error": e} if label else str(e)
                    for e in errors]
        return " ".join(out)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300, required=False)

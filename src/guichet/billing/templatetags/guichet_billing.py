from django import template

from guichet.common.money import format_euros

register = template.Library()


@register.filter
def euros(cents) -> str:
    """Cents as French euros: 123456 -> "1 234,56 €"."""
    try:
        return format_euros(int(cents))
    except (TypeError, ValueError):
        return ""


@register.filter
def cents_input(cents) -> str:
    """Cents as an amount to type back in a form: 1250 -> "12,50"."""
    try:
        return format_euros(int(cents), symbol=False).replace("\u202f", "")
    except (TypeError, ValueError):
        return ""

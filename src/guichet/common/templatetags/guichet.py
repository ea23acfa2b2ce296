from django import template

from guichet.common.i18n import pick

register = template.Library()


@register.filter
def tr(obj, field: str) -> str:
    """``{{ service|tr:"name" }}``: the English text in English when there is one."""
    if obj is None:
        return ""
    if isinstance(obj, dict):
        return pick(obj.get(field) or "", obj.get(f"{field}_en") or "")
    return pick(getattr(obj, field, "") or "", getattr(obj, f"{field}_en", "") or "")

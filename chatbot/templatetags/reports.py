"""The reports' template helpers: a table cell as the page shows it, and the operator's own day
on the overview ("Meu dia")."""

from django import template
from django.utils import formats

from chatbot import reports

from .dashboard import duration

register = template.Library()


@register.filter
def report_cell(cell):
    """A cell of `dashboard.reports.table` as the page writes it (the CSV writes the same value)."""
    value, kind = cell["value"], cell["kind"]
    if value is None:
        return "—"
    if kind == "duration":
        return duration(value)
    if kind == "count":
        return grouped(value)
    if kind == "decimal":
        return formats.number_format(value, 1)
    if kind == "percent":
        return f"{formats.number_format(value, 1)}%"
    return value


@register.filter
def grouped(value):
    """A count with its thousands grouped as the language writes them (pt-BR: 40.278)."""
    return formats.number_format(value, force_grouping=True)


@register.simple_tag
def my_day(user):
    """The logged-in operator's figures of today (two queries, whatever the data)."""
    return reports.my_day(user)

"""The reports page (design.md, "Dashboard"): /chatbot/dashboard/reports/ for a period and a slice
(department, operator, label), and each of its tables as CSV: `?format=csv&table=<name>`, the
summary without `table`. The page and the CSV are written from the same rows (`tables`), so they
cannot disagree; the figures come from `chatbot.reports`.

Bad parameters never fail the page: each is named in a message and its default used instead.
"""

import csv
from dataclasses import dataclass, field
from datetime import date

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.dates import WEEKDAYS
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from .. import reports
from ..models import Department, Label
from .permissions import is_admin, open_departments, operator_required, operators

PRESET_NAMES = {
    "today": gettext_lazy("Today"), "7d": gettext_lazy("Last 7 days"), "30d": gettext_lazy("Last 30 days"),
    "month": gettext_lazy("This month"), "last_month": gettext_lazy("Last month"),
    "12m": gettext_lazy("Last 12 months"),
}
WAIT_BUCKETS = [gettext_lazy("under 1 min"), gettext_lazy("1 to 5 min"), gettext_lazy("5 to 15 min"),
                gettext_lazy("15 to 60 min"), gettext_lazy("1 to 4 h"), gettext_lazy("4 h or more")]
WAIT_TICKS = ["<1 min", "1–5", "5–15", "15–60", "1–4 h", "4 h+"]
CSV_NAMES = {"summary": "resumo", "times": "tempos", "csat": "satisfacao", "comments": "comentarios",
             "heat_map": "mensagens-por-hora", "waiting": "espera", "staffing": "mensagens-e-atendentes"}


@dataclass
class Choice:
    """What the request asks for, read safely: the period, the slice, the problems met."""

    period: reports.Period
    scope: reports.Scope
    errors: list = field(default_factory=list)
    departments: list = field(default_factory=list)
    operators: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    picked: dict = field(default_factory=dict)  # the department, operator and label chosen (or None)
    query: str = ""  # the choice as a query string (the CSV links)


def pick(request, name, options, error):
    """The option (by id) named by GET[name], or None; an unknown one adds `error`."""
    value = request.GET.get(name, "").strip()
    if not value:
        return None
    found = next((option for option in options if str(option.pk) == value), None)
    if found is None:
        raise ValueError(error)
    return found


def read_dates(request, today):
    """The custom period of `from` and `to` (ISO dates, as <input type=date> sends them)."""
    values = request.GET.get("from", "").strip(), request.GET.get("to", "").strip()
    if not all(values):
        raise reports.ReportRefused(_("Choose both dates of the period."))
    try:
        first, last = (date.fromisoformat(value) for value in values)
    except ValueError:
        raise reports.ReportRefused(_("A date could not be read: use a date such as 31/03/2026.")) from None
    return reports.custom_period(first, last, today)


def read_choice(request):
    user, today = request.user, timezone.localdate()
    errors = []
    preset = request.GET.get("period", "")
    period = reports.preset_period(reports.DEFAULT_PRESET, today)
    if preset in reports.PRESETS:
        period = reports.preset_period(preset, today)
    elif preset == "custom" or (not preset and (request.GET.get("from") or request.GET.get("to"))):
        try:
            period = read_dates(request, today)
        except reports.ReportRefused as refused:
            errors.append(str(refused))
    elif preset:
        errors.append(_("Unknown period: showing the last 30 days."))
    admin = is_admin(user)
    every_department = list(Department.objects.all())
    mine = set(open_departments(user)) if not admin else {d.pk for d in every_department}
    departments = [d for d in every_department if d.pk in mine]
    choice = Choice(period=period, scope=None, errors=errors, departments=departments,
                    operators=list(operators()), labels=list(Label.objects.all()))
    picked = {}
    for name, options, error in (("department", departments, _("Unknown department: showing every department.")),
                                 ("operator", choice.operators, _("Unknown operator: showing every operator.")),
                                 ("label", choice.labels, _("Unknown label: showing every label."))):
        try:
            picked[name] = pick(request, name, options, error)
        except ValueError as unknown:
            errors.append(str(unknown))
            picked[name] = None
    choice.scope = reports.Scope(
        department=picked["department"].pk if picked["department"] else 0,
        operator=picked["operator"].pk if picked["operator"] else 0,
        label=picked["label"].pk if picked["label"] else 0,
        hidden=frozenset(d.pk for d in every_department if d.pk not in mine), viewer=user.pk)
    choice.picked = picked
    query = {"period": period.preset} if period.preset != "custom" else {
        "period": "custom", "from": period.first.isoformat(), "to": period.last.isoformat()}
    query.update({name: option.pk for name, option in picked.items() if option})
    choice.query = urlencode(query)
    return choice


@require_GET
@operator_required
def report_page(request):
    """The reports page, or one of its tables as CSV (`?format=csv[&table=name]`)."""
    choice = read_choice(request)
    report = reports.report(choice.scope, choice.period)
    built = tables(report, choice, request)
    if request.GET.get("format") == "csv":
        name = request.GET.get("table", "summary")
        if name not in built:
            raise Http404(_("Unknown table."))
        return as_csv(built[name], CSV_NAMES[name])
    return render(request, "dashboard/reports.html", {
        "choice": choice, "report": report, "tables": built, "charts": charts(report), "section": "reports",
        "presets": PRESET_NAMES.items()})


# --- Tables: the page's and the CSV's ------------------------------------------------------------


def table(title, columns, rows):
    """A table of `columns` (labels) and `rows` of (value, kind) cells; a cell's kind says how it is
    written: text, count, duration (a timedelta), decimal, percent, link (a URL)."""
    return {"title": title, "columns": columns, "rows": [
        [{"value": value, "kind": kind, "column": column} for column, (value, kind) in zip(columns, row, strict=True)]
        for row in rows]}


def tables(report, choice, request):
    """Every table of the page, by the name its CSV link gives."""
    weekdays = [str(WEEKDAYS[day]) for day in range(7)]
    return {
        "summary": summary(report, choice),
        "times": table(_("First response and resolution"), [
            _("Measure"), _("Conversations"), _("Median (wall-clock)"), _("90th percentile (wall-clock)"),
            _("Median (business hours)"), _("90th percentile (business hours)")], [
            [(name, "text"), (figures["count"], "count"), (figures["wall"]["median"], "duration"),
             (figures["wall"]["p90"], "duration"), (figures["business"]["median"], "duration"),
             (figures["business"]["p90"], "duration")]
            for name, figures in ((_("First response"), report["first_response"]),
                                  (_("Resolution"), report["resolution"]))]),
        "csat": table(_("Satisfaction scores"), [_("Score"), _("Answers"), _("Share of answers")], [
            [(str(row["score"]), "text"), (row["count"], "count"), (row["percent"], "percent")]
            for row in report["csat"]["distribution"]]),
        "comments": table(_("Customers' comments"), [
            _("Closed at"), _("Customer"), _("Score"), _("Comment"), _("Conversation")], [
            [(short(session.closed_at, time=True), "text"), (str(session.contact), "text"),
             (session.csat_score, "count"), (session.csat_comment, "text"),
             (request.build_absolute_uri(reverse("chatbot:dashboard-conversation", args=[session.pk])), "link")]
            for session in report["comments"]]),
        "heat_map": heat_map(report["heat_map"], weekdays),
        "waiting": table(_("Waiting time for a first response"), [
            _("Wait"), _("Conversations (wall-clock)"), _("Conversations (business hours)")], [
            [(bucket, "text"), (row["wall"], "count"), (row["business"], "count")]
            for bucket, row in zip(WAIT_BUCKETS, report["waiting"], strict=True)]),
        "staffing": table(_("Busiest hours and operators online"), [
            _("Day"), _("Hour"), _("Customers' messages per hour (average)"), _("Operators online (average)")], [
            [(weekdays[row["weekday"]], "text"), (f"{row['hour']}h", "text"), (row["messages"], "decimal"),
             (row["online"], "decimal")] for row in report["staffing"]]),
    }


def heat_map(figures, weekdays):
    """The heat map's table; each hour's cell also has its colour `level`."""
    built = table(_("Customers' messages by hour of the week"), [_("Day"), *[f"{h}h" for h in range(24)]], [
        [(weekdays[row["weekday"]], "text"), *[(cell["count"], "count") for cell in row["cells"]]]
        for row in figures["rows"]])
    for cells, row in zip(built["rows"], figures["rows"], strict=True):
        for cell, hour in zip(cells[1:], row["cells"], strict=True):
            cell["level"] = hour["level"]
    return built


def summary(report, choice):
    """The page's figures at a glance (its cards), after what the report is of."""
    period, csat, picked = report["period"], report["csat"], choice.picked
    first, resolution = report["first_response"], report["resolution"]
    figures = [
        (_("Period"), f"{short(period.first)} – {short(period.last)}", "text"),
        (_("Department"), str(picked["department"] or _("Every department")), "text"),
        (_("Operator"), str(picked["operator"] or _("Any operator")), "text"),
        (_("Label"), str(picked["label"] or _("Any label")), "text"),
        (_("Conversations started"), report["started"], "count"),
        (_("Conversations handled by an operator"), report["handled"], "count"),
        (_("Conversations closed"), report["closed"], "count"),
        (_("Median first response (wall-clock)"), first["wall"]["median"], "duration"),
        (_("Median first response (business hours)"), first["business"]["median"], "duration"),
        (_("Median resolution (wall-clock)"), resolution["wall"]["median"], "duration"),
        (_("Median resolution (business hours)"), resolution["business"]["median"], "duration"),
        (_("Satisfaction (average, 1 to 5)"), csat["average"], "decimal"),
        (_("Surveys answered"), csat["answered"], "count"),
        (_("Survey response rate"), csat["rate"], "percent"),
        (_("Customers' messages"), report["received"], "count"),
    ]
    return table(_("Summary"), [_("Figure"), _("Value")], [[(name, "text"), (value, kind)]
                                                          for name, value, kind in figures])


def short(moment, time=False):
    if time:
        return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")
    return formats.date_format(moment, "SHORT_DATE_FORMAT")


def csv_value(cell, decimal_point):
    value, kind = cell["value"], cell["kind"]
    if value is None:
        return ""
    if kind == "duration":  # h:mm:ss, which spreadsheets read as a duration
        total = int(value.total_seconds())
        return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"
    if kind in ("decimal", "percent"):
        return f"{value:.1f}".replace(".", decimal_point)
    return value


def as_csv(built, name):
    """The table as CSV (UTF-8 with a BOM, so that spreadsheets read the accents), as the page's
    language writes one: in Portuguese, fields split by ";" and decimals with a comma (what a
    spreadsheet in Brazil opens into columns), in English "," and a point. Durations as h:mm:ss."""
    decimal_point = formats.get_format("DECIMAL_SEPARATOR")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="relatorio-{name}.csv"'
    response.write("\ufeff")
    writer = csv.writer(response, delimiter=";" if decimal_point == "," else ",")
    writer.writerow(built["columns"])
    for row in built["rows"]:
        writer.writerow([csv_value(cell, decimal_point) for cell in row])
    return response


# --- Charts: SVG geometry (the page's CSP allows no inline style) --------------------------------


def charts(report):
    """Bars and lines in each chart's 0-100 coordinates (y down), drawn by the template as SVG."""
    waits = report["waiting"]
    top = max([row["wall"] for row in waits] + [row["business"] for row in waits] + [1])
    answers = max([row["count"] for row in report["csat"]["distribution"]] + [1])
    staffing = report["staffing"]
    messages_top = max([row["messages"] for row in staffing] + [0.1])
    online_top = max([row["online"] for row in staffing] + [1])
    return {
        "waiting": {"top": top, "bars": [{"wall": 100 * row["wall"] / top, "business": 100 * row["business"] / top,
                                          "wall_y": 100 - 100 * row["wall"] / top,
                                          "business_y": 100 - 100 * row["business"] / top, "tick": tick}
                                         for row, tick in zip(waits, WAIT_TICKS, strict=True)]},
        "csat": {"top": answers, "bars": [{"score": row["score"], "width": 100 * row["count"] / answers}
                                          for row in report["csat"]["distribution"]]},
        "staffing": {"messages_top": messages_top, "online_top": online_top,
                     # 168 bars: written here as SVG numbers, not by the template's floatformat.
                     "bars": [{"x": f"{index + 0.1:.1f}", "height": f"{100 * row['messages'] / messages_top:.2f}",
                               "y": f"{100 - 100 * row['messages'] / messages_top:.2f}"}
                              for index, row in enumerate(staffing)],
                     "line": " ".join(f"{index + 0.5:g},{100 - 100 * row['online'] / online_top:.2f}"
                                      for index, row in enumerate(staffing))},
    }


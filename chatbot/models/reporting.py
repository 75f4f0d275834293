"""The reports' stored figures (chatbot/reports.py): counted once per day, rolled up per month."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ReportDay(models.Model):
    """The figures of one finished day, or of one month (`span`), for one slice of the
    conversations: a department, an operator, a label, or any combination (0 for "every").

    A session counts in each slice it belongs to (every department and its own, every operator
    and its own, every label and each of its labels), so a report reads one row per day or month
    whatever its filters. `figures` is a JSON document of counts and histograms (its shape is
    `reports.count`'s); the counts outlive the retention purge of the messages they counted.
    """

    class Span(models.TextChoices):
        DAY = "day", _("day")
        MONTH = "month", _("month")

    span = models.CharField(_("span"), max_length=5, choices=Span.choices, default=Span.DAY)
    day = models.DateField(_("day (the first of a month)"))
    # Plain ids, not foreign keys: a deleted department's past stays counted under "every".
    department = models.PositiveIntegerField(_("department id (0: every)"), default=0)
    operator = models.PositiveIntegerField(_("operator id (0: every)"), default=0)
    label = models.PositiveIntegerField(_("label id (0: every)"), default=0)
    figures = models.JSONField(_("figures"), default=dict)
    counted_at = models.DateTimeField(_("counted at"), default=timezone.now)

    class Meta:
        verbose_name = _("report figures")
        verbose_name_plural = _("report figures")
        constraints = [
            # A report reads one slice over a range of days: the slice first, then the days.
            models.UniqueConstraint(fields=["span", "department", "operator", "label", "day"],
                                    name="report_day_unique_slice"),
        ]
        indexes = [models.Index(fields=["span", "day"], name="report_day_day_idx")]

    def __str__(self):
        return f"{self.span} {self.day} d{self.department} o{self.operator} l{self.label}"

"""The reports page (/chatbot/dashboard/reports/) over a small hand-made data set whose figures are
worked out by hand below: counts, first response and resolution (wall-clock and business hours),
the survey, the heat map, waiting times, operators online; filters, periods, bad parameters, the
CSV against the page, who sees what, and a constant number of queries."""

import csv
import io
import re
from datetime import datetime, time, timedelta
from html import unescape
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from chatbot import bot, conversation, reporting, reports
from chatbot.models import (
    BusinessHours,
    Contact,
    Department,
    Holiday,
    Label,
    Message,
    OnlineHour,
    PhoneNumber,
    ReportDay,
    Session,
)

from .helpers import make_operator

pytestmark = pytest.mark.django_db

URL = "/chatbot/dashboard/reports/"
D = 4  # the main day of the data set: four days ago (final, not today's weekday); D + 1 the day before


def at(days_ago, clock, seconds=0):
    """A local moment `days_ago` days before today at `clock` ("HH:MM")."""
    hour, minute = map(int, clock.split(":"))
    day = timezone.localdate() - timedelta(days=days_ago)
    return datetime.combine(day, time(hour, minute, seconds), tzinfo=timezone.get_current_timezone())


def conversation_of(name, **fields):
    contact = Contact.objects.create(wa_id=f"55119{abs(hash(name)) % 10**8:08d}", name=name)
    return Session.objects.create(contact=contact, phone_number=PhoneNumber.objects.default(),
                                  last_message_at=fields.get("started_at", timezone.now()), **fields)


def inbound(session, moment, kind="text"):
    return Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                                  direction="in", source="customer", type=kind, text="oi", status="received",
                                  timestamp=moment)


@pytest.fixture
def data(django_user_model):
    """Open 08:00-18:00 every day. Vendas (ana), Suporte (bia), the label VIP.

    | # | department, operator | started | asked a person | first response | closed | survey |
    |---|---|---|---|---|---|---|
    | 1 | Vendas, ana, VIP | D 09:00 | D 09:00 | D 09:02 (2 min) | D 09:30 | 5 |
    | 2 | Vendas, ana | D+1 22:50 | D+1 23:00 | D 08:05 (9 h 05 min; 5 min of business) | D 10:50 | 2, a comment |
    | 3 | Suporte, bia | D 14:00 | D 14:00 | D 14:20 (20 min) | D 15:00 | asked, no answer |
    | 4 | Suporte, bia | D 16:00 | D 16:00 | D 16:00:40 (40 s) | D 17:00 | 4 |
    | 5 | none (the bot) | D 10:00 | | | D 11:00 | |
    | 6 | Vendas, waiting | D 17:30 | D 17:30 | | | |
    """
    for weekday in range(7):
        BusinessHours.objects.create(weekday=weekday, opens=time(8), closes=time(18))
    vendas, suporte = Department.objects.create(name="Vendas"), Department.objects.create(name="Suporte")
    ana, bia = make_operator(django_user_model, "ana"), make_operator(django_user_model, "bia")
    vendas.operators.add(ana)
    suporte.operators.add(bia)
    vip = Label.objects.create(name="VIP")
    owner = django_user_model.objects.create_user("dono", password="x", is_staff=True)
    s1 = conversation_of("Um", status="closed", department=vendas, assigned_to=ana, started_at=at(D, "09:00"),
                         waiting_since=at(D, "09:00"), first_response_at=at(D, "09:02"), closed_at=at(D, "09:30"),
                         csat_asked_at=at(D, "09:30"), csat_score=5, csat_answered_at=at(D, "09:31"))
    s1.labels.add(vip)
    s2 = conversation_of("Dois", status="closed", department=vendas, assigned_to=ana, started_at=at(D + 1, "22:50"),
                         waiting_since=at(D + 1, "23:00"), first_response_at=at(D, "08:05"),
                         closed_at=at(D, "10:50"), csat_asked_at=at(D, "10:50"), csat_score=2,
                         csat_answered_at=at(D, "10:52"), csat_comment="Demorou demais")
    s3 = conversation_of("Três", status="closed", department=suporte, assigned_to=bia, started_at=at(D, "14:00"),
                         waiting_since=at(D, "14:00"), first_response_at=at(D, "14:20"), closed_at=at(D, "15:00"),
                         csat_asked_at=at(D, "15:00"))
    conversation_of("Quatro", status="closed", department=suporte, assigned_to=bia, started_at=at(D, "16:00"),
                    waiting_since=at(D, "16:00"), first_response_at=at(D, "16:00", 40), closed_at=at(D, "17:00"),
                    csat_asked_at=at(D, "17:00"), csat_score=4, csat_answered_at=at(D, "17:05"))
    conversation_of("Cinco", status="closed", started_at=at(D, "10:00"), closed_at=at(D, "11:00"))
    conversation_of("Seis", status="waiting", department=vendas, started_at=at(D, "17:30"),
                    waiting_since=at(D, "17:30"))
    # Customers' messages: two at 9h and one at 14h on D, one at 23h the day before; a reaction
    # belongs to a message and is not one.
    inbound(s1, at(D, "09:00"))
    inbound(s1, at(D, "09:10"))
    inbound(s1, at(D, "09:11"), kind="reaction")
    inbound(s2, at(D + 1, "23:00"))
    inbound(s3, at(D, "14:00"))
    # Ana online at 9h and 10h on D, Bia at 14h.
    for user, clock in ((ana, "09:00"), (ana, "10:00"), (bia, "14:00")):
        OnlineHour.objects.create(user=user, hour=at(D, clock))
    return {"vendas": vendas, "suporte": suporte, "ana": ana, "bia": bia, "vip": vip, "owner": owner, "s2": s2}


def page(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200
    return response


def figures(client, **params):
    return page(client, **params).context["report"]


# --- The figures, worked out by hand -----------------------------------------------------------


def test_counts_times_survey_and_waits_of_the_week(client, data):
    client.force_login(data["owner"])
    report = figures(client, period="7d")
    assert (report["started"], report["handled"], report["closed"]) == (6, 4, 5)
    minutes = lambda n: timedelta(minutes=n)  # noqa: E731
    # First responses: 40 s, 2 min, 20 min, 9 h 05 min wall-clock; 40 s, 2 min, 5 min, 20 min of
    # business hours (the 23:00 customer answered at 08:05). Nearest rank: the 2nd and 4th of 4.
    assert report["first_response"] == {
        "count": 4, "wall": {"median": minutes(2), "p90": minutes(9 * 60 + 5)},
        "business": {"median": minutes(2), "p90": minutes(20)}}
    # Resolutions of the four handled: 30 min, 1 h, 1 h, 12 h (22:50 to 10:50); in business hours
    # 30 min, 1 h, 1 h, 2 h 50 min (08:00 to 10:50). The bot's conversation has none.
    assert report["resolution"] == {
        "count": 4, "wall": {"median": minutes(60), "p90": minutes(12 * 60)},
        "business": {"median": minutes(60), "p90": minutes(170)}}
    assert report["csat"] == {
        "asked": 4, "answered": 3, "rate": 75.0, "average": 3.7, "comments": 1,
        "distribution": [{"score": 1, "count": 0, "percent": 0.0}, {"score": 2, "count": 1, "percent": 33.3},
                         {"score": 3, "count": 0, "percent": 0.0}, {"score": 4, "count": 1, "percent": 33.3},
                         {"score": 5, "count": 1, "percent": 33.3}]}
    assert [comment.csat_comment for comment in report["comments"]] == ["Demorou demais"]
    # Waits: 40 s (<1 min), 2 min (1-5), 20 min (15-60), 9 h (4 h+); in business hours the 9 h
    # is 5 min (5-15: five minutes is not under five).
    assert [(row["wall"], row["business"]) for row in report["waiting"]] == [
        (1, 1), (1, 1), (0, 1), (1, 1), (0, 0), (1, 0)]


def test_heat_map_and_operators_online_by_hour_of_the_week(client, data):
    client.force_login(data["owner"])
    report = figures(client, period="7d")
    day, before = at(D, "00:00").weekday(), at(D + 1, "00:00").weekday()
    cells = {(row["weekday"], cell["hour"]): cell for row in report["heat_map"]["rows"] for cell in row["cells"]}
    assert {key: cell["count"] for key, cell in cells.items() if cell["count"]} == {
        (day, 9): 2, (day, 14): 1, (before, 23): 1}
    assert report["received"] == 4 and report["heat_map"]["top"] == 2
    assert (cells[(day, 9)]["level"], cells[(day, 14)]["level"], cells[(day, 10)]["level"]) == (4, 2, 0)
    # Seven days: each hour of the week once (D is not today), so the averages are the counts.
    slots = {(row["weekday"], row["hour"]): row for row in report["staffing"]}
    assert (slots[(day, 9)]["messages"], slots[(day, 9)]["online"]) == (2.0, 1.0)
    assert (slots[(day, 10)]["messages"], slots[(day, 10)]["online"]) == (0.0, 1.0)
    assert (slots[(day, 14)]["messages"], slots[(day, 14)]["online"]) == (1.0, 1.0)
    assert sum(row["online"] for row in report["staffing"]) == 3.0
    # Over 14 days every hour of the week came twice: half.
    first = timezone.localdate() - timedelta(days=13)
    slots = {(row["weekday"], row["hour"]): row for row in figures(
        client, period="custom", **{"from": first.isoformat(), "to": timezone.localdate().isoformat()})["staffing"]}
    assert (slots[(day, 9)]["messages"], slots[(day, 9)]["online"]) == (1.0, 0.5)


def test_filters_by_department_operator_and_label(client, data):
    client.force_login(data["owner"])
    vendas = figures(client, period="7d", department=data["vendas"].pk)
    assert (vendas["started"], vendas["handled"], vendas["closed"]) == (3, 2, 2)
    assert vendas["first_response"]["wall"] == {"median": timedelta(minutes=2), "p90": timedelta(hours=9, minutes=5)}
    assert (vendas["csat"]["average"], vendas["csat"]["rate"]) == (3.5, 100.0)
    assert vendas["received"] == 3  # S1's two and S2's one

    bia = figures(client, period="7d", operator=data["bia"].pk)
    assert (bia["started"], bia["handled"], bia["closed"]) == (2, 2, 2)
    assert bia["first_response"]["wall"] == {"median": timedelta(seconds=40), "p90": timedelta(minutes=20)}
    assert (bia["csat"]["average"], bia["csat"]["rate"], bia["csat"]["answered"]) == (4.0, 50.0, 1)
    day = at(D, "00:00").weekday()
    online = {(row["weekday"], row["hour"]): row["online"] for row in bia["staffing"]}
    assert (online[(day, 9)], online[(day, 14)]) == (0.0, 1.0)  # Bia's own hours only

    vip = figures(client, period="7d", label=data["vip"].pk)
    assert (vip["started"], vip["handled"], vip["closed"], vip["received"]) == (1, 1, 1, 2)
    assert vip["resolution"]["wall"]["median"] == timedelta(minutes=30)

    both = figures(client, period="7d", department=data["suporte"].pk, operator=data["ana"].pk)
    assert (both["started"], both["handled"], both["closed"]) == (0, 0, 0)


def test_business_time_follows_the_bots_hours_and_holidays():
    zone = timezone.get_current_timezone()
    config = bot.Config(texts={}, hours=bot.weekly_hours([(day, time(8), time(18)) for day in range(7)]))
    wrote, answered = datetime(2026, 3, 2, 23, 0, tzinfo=zone), datetime(2026, 3, 3, 8, 5, tzinfo=zone)
    assert reporting.business_seconds(config, wrote, answered) == 300
    holiday = bot.Config(texts={}, hours=config.hours, holidays=frozenset({answered.date()}))
    assert reporting.business_seconds(holiday, wrote, answered) == 0
    assert not bot.is_open(holiday, answered) and bot.is_open(config, answered)
    always = bot.Config(texts={})  # no hours set: always open, as for the bot
    assert reporting.business_seconds(always, wrote, answered) == 9 * 3600 + 300
    # Over a weekend with no Saturday or Sunday hours: Friday 17:00 to Monday 09:00 is two hours.
    weekdays = bot.Config(texts={}, hours=bot.weekly_hours([(day, time(8), time(18)) for day in range(5)]))
    friday = datetime(2026, 3, 6, 17, 0, tzinfo=zone)
    assert reporting.business_seconds(weekdays, friday, friday + timedelta(days=2, hours=16)) == 7200


def test_percentiles_are_nearest_rank_over_durations_floored_as_shown():
    assert [reporting.quantize(s) for s in (59.9, 61, 3599, 86399, 90061)] == [59, 60, 3540, 86340, 86400 + 3600]
    histogram = {"40": 1, "120": 1, "1200": 1, "32700": 1}
    assert (reports.percentile(histogram, 0.5), reports.percentile(histogram, 0.9)) == (120, 32700)
    assert reports.percentile({"60": 9, "7200": 1}, 0.9) == 60
    assert reports.percentile({}, 0.5) is None


def test_the_page_names_both_kinds_of_time_in_portuguese(client, data):
    client.force_login(data["owner"])
    html = page(client, period="7d").content.decode()
    assert "Mediana da 1ª resposta (tempo corrido)" in html
    assert "Mediana da 1ª resposta (em horário de atendimento)" in html
    assert "9 h 05 min" in html and "5 min" in html
    assert 'style="' not in html and "<script>" not in html
    assert html.count('class="heat-') >= 7 * 24
    assert "<svg" in html


# --- Periods -----------------------------------------------------------------------------------


def test_presets_and_today_counted_live(client, data):
    client.force_login(data["owner"])
    today = timezone.localdate()
    live = conversation_of("Hoje", status="waiting", started_at=timezone.now(), waiting_since=timezone.now())
    inbound(live, timezone.now())
    report = figures(client, period="today")
    assert (report["period"].first, report["period"].last) == (today, today)
    assert (report["started"], report["received"]) == (1, 1)
    assert figures(client)["period"] == reports.Period(today - timedelta(days=29), today, "30d")  # the default
    assert figures(client, period="7d")["started"] == 7
    this_month = figures(client, period="month")["period"]
    assert (this_month.first, this_month.last) == (today.replace(day=1), today)
    last_month = figures(client, period="last_month")["period"]
    assert last_month.last == today.replace(day=1) - timedelta(days=1) and last_month.first.day == 1
    year = figures(client, period="12m")["period"]
    assert (year.first, year.last, year.days) == (today - timedelta(days=364), today, 365)


def test_a_year_reads_whole_months_once_counted_and_keeps_them(client, data):
    client.force_login(data["owner"])
    old = conversation_of("Antiga", status="closed", started_at=at(60, "10:00"), closed_at=at(60, "11:00"))
    inbound(old, at(60, "10:00"))
    year = figures(client, period="12m")
    assert (year["started"], year["closed"], year["received"]) == (7, 6, 5)
    month = at(60, "00:00").date().replace(day=1)
    assert ReportDay.objects.filter(span="month", day=month, department=0, operator=0, label=0).exists()
    Message.objects.all().delete()  # the retention purge: finished days and months keep their counts
    again = figures(client, period="12m")
    assert (again["started"], again["received"]) == (7, 5)
    # A custom period inside that month reads its days.
    day = at(60, "00:00").date().isoformat()
    assert figures(client, period="custom", **{"from": day, "to": day})["started"] == 1


def test_a_day_still_open_to_change_is_counted_again_after_ten_minutes(client, data):
    client.force_login(data["owner"])
    yesterday = conversation_of("Ontem", status="closed", started_at=at(1, "10:00"), closed_at=at(1, "10:30"))
    assert figures(client, period="7d")["started"] == 7
    Session.objects.filter(pk=yesterday.pk).update(department=data["vendas"])
    assert figures(client, period="7d", department=data["vendas"].pk)["started"] == 3  # counted minutes ago
    ReportDay.objects.update(counted_at=timezone.now() - timedelta(minutes=11))
    assert figures(client, period="7d", department=data["vendas"].pk)["started"] == 4  # yesterday again
    Session.objects.filter(pk=data["s2"].pk).update(department=None)
    assert figures(client, period="7d", department=data["vendas"].pk)["started"] == 4  # D+1 is final


def test_the_sum_of_final_days_is_kept_until_they_are_counted_anew(client, data):
    client.force_login(data["owner"])
    assert figures(client, period="7d")["started"] == 6
    day = at(D, "00:00").date()
    # Final rows never change: their sum comes from the cache, not from the rows again.
    ReportDay.objects.filter(span="day", day=day).update(figures={"started": 100})
    assert figures(client, period="7d")["started"] == 6
    # A new count is new rows: read again (five conversations started that day, and now a sixth).
    ReportDay.objects.filter(span="day", day=day).delete()
    Session.objects.filter(pk=data["s2"].pk).update(started_at=at(D, "08:00"))
    assert figures(client, period="custom", **{"from": day.isoformat(), "to": day.isoformat()})["started"] == 6


def test_the_worker_counts_the_days_before_a_page_needs_them(client, data):
    now, config, today = timezone.now(), conversation.load_config()[0], timezone.localdate()
    days = lambda *ago: [today - timedelta(days=n) for n in ago]  # noqa: E731
    # The days not final yet, then the history never counted, newest first, a few at a time.
    assert reporting.keep_up(now, config, backfill=1) == days(4, 3, 2, 1)
    assert reporting.keep_up(now + timedelta(minutes=1), config, backfill=1) == days(D + 1)  # the first conversation
    before = reporting.keep_up(now + timedelta(minutes=2), config, backfill=31)  # its month's days before it
    assert before == sorted(before) and all(day.replace(day=1) == days(D + 1)[0].replace(day=1) for day in before)
    assert reporting.keep_up(now + timedelta(minutes=3), config) == []
    # Recounted before a page would find them stale (10 min); the day before those is final now.
    assert reporting.keep_up(now + timedelta(minutes=6), config) == days(2, 1)
    counted = dict(ReportDay.objects.filter(span="day", department=0, operator=0, label=0)
                   .values_list("day", "counted_at"))

    client.force_login(data["owner"])
    assert figures(client, period="7d")["started"] == 6
    after = dict(ReportDay.objects.filter(span="day", department=0, operator=0, label=0)
                 .values_list("day", "counted_at"))
    assert {day: after[day] for day in counted} == counted  # the page counted only what came before


def test_the_worker_rolls_up_a_month_once_its_days_are_final(data):
    conversation_of("Antiga", status="closed", started_at=at(70, "10:00"), closed_at=at(70, "11:00"))
    month = at(70, "00:00").date().replace(day=1)
    config = conversation.load_config()[0]
    while reporting.keep_up(timezone.now(), config):
        pass
    rolled = ReportDay.objects.get(span="month", day=month, department=0, operator=0, label=0)
    assert rolled.figures["started"] == 1


def test_the_worker_queues_the_counting_every_few_minutes(monkeypatch):
    from chatbot.worker import Inbox

    queued = []
    monkeypatch.setattr(reporting, "keep_up_task", SimpleNamespace(enqueue=lambda: queued.append(1)))
    monkeypatch.setattr("chatbot.inbound.drain", lambda: 0)
    inbox = Inbox("test")
    inbox.step()
    inbox.step()
    assert queued == [1]
    inbox.last_reports -= reporting.KEEP_UP_EVERY.total_seconds()
    inbox.step()
    assert queued == [1, 1]


@pytest.mark.parametrize(("params", "message"), [
    ({"period": "custom", "from": "31/02/2026", "to": "2026-03-01"}, "Não foi possível ler uma data"),
    ({"period": "custom", "from": "2026-03-10", "to": "2026-03-01"}, "A data inicial é posterior à final"),
    ({"period": "custom", "from": "2026-03-10"}, "Escolha as duas datas"),
    ({"period": "custom", "from": "2000-01-01", "to": "2026-03-01"}, "no máximo 731 dias"),
    ({"period": "custom", "from": "2999-01-01", "to": "2999-02-01"}, "ainda não começou"),
    ({"period": "semana"}, "Período desconhecido"),
    ({"department": "999"}, "Departamento desconhecido"),
    ({"department": "abc"}, "Departamento desconhecido"),
    ({"operator": "²"}, "Atendente desconhecido"),
    ({"label": "999"}, "Etiqueta desconhecida"),
])
def test_bad_parameters_are_named_on_the_page_never_a_500(client, data, params, message):
    client.force_login(data["owner"])
    response = page(client, **params)
    assert message in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    assert response.context["report"]["period"].days >= 1
    assert client.get(URL, {**params, "format": "csv"}).status_code == 200


def test_a_period_into_the_future_stops_today(client, data):
    client.force_login(data["owner"])
    today = timezone.localdate()
    period = figures(client, period="custom", **{"from": (today - timedelta(days=2)).isoformat(),
                                                  "to": (today + timedelta(days=30)).isoformat()})["period"]
    assert (period.first, period.last) == (today - timedelta(days=2), today)
    assert not ReportDay.objects.filter(day__gte=today).exists()


# --- The CSV is the page ----------------------------------------------------------------------


class Tables(HTMLParser):
    """Every <table id="table-…"> of a page as rows of cell texts (a link's cell: its href)."""

    def __init__(self):
        super().__init__()
        self.tables, self.rows, self.cell, self.href = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id", "").startswith("table-"):
            self.rows = self.tables.setdefault(attrs["id"].removeprefix("table-"), [])
        elif self.rows is not None and tag == "tr":
            self.rows.append([])
        elif self.rows is not None and tag in ("th", "td"):
            self.cell, self.href = [], None
        elif self.cell is not None and tag == "a":
            self.href = attrs["href"]

    def handle_endtag(self, tag):
        if tag == "table":
            self.rows = None
        elif self.cell is not None and tag in ("th", "td"):
            self.rows[-1].append(self.href or " ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def value(text):
    """A page's or a CSV's cell as a comparable value: durations in seconds, numbers as numbers."""
    text = text.strip()
    if text in ("", "—"):
        return None
    patterns = [(r"(\d+):(\d\d):(\d\d)", (3600, 60, 1)), (r"(\d+) s", (1,)), (r"(\d+) min", (60,)),
                (r"(\d+) h (\d+) min", (3600, 60)), (r"(\d+) d (\d+) h", (86400, 3600))]
    for pattern, units in patterns:
        if match := re.fullmatch(pattern, text):
            return sum(int(part) * unit for part, unit in zip(match.groups(), units, strict=True))
    if re.fullmatch(r"\d+[.,]\d%?", text):
        return float(text.rstrip("%").replace(",", "."))
    if re.fullmatch(r"\d{1,3}(\.\d{3})*", text):
        return int(text.replace(".", ""))
    return text


def csv_rows(client, delimiter=";", **params):
    response = client.get(URL, {**params, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="relatorio-[a-z-]+\.csv"', response["Content-Disposition"])
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:]), delimiter=delimiter))


@pytest.mark.parametrize("period", ["7d", "12m"])
def test_every_csv_equals_its_table_on_the_page(client, data, period):
    client.force_login(data["owner"])
    html = page(client, period=period).content.decode()
    parser = Tables()
    parser.feed(html)
    names = ["times", "csat", "comments", "heat_map", "waiting", "staffing"]
    assert set(names) <= set(parser.tables)
    for name in names:
        rows = csv_rows(client, period=period, table=name)
        shown = parser.tables[name]
        assert [value(cell) for cell in rows[0]] == [value(cell) for cell in shown[0]], name  # the headers
        if not rows[1:]:
            assert shown[1:] == [["Nada neste período."]], name
            continue
        assert [[value(cell) for cell in row] for row in rows[1:]] == [[value(cell) for cell in row]
                                                                        for row in shown[1:]], name
        assert len(rows) > 1
    # The summary: the context line and the cards, in order.
    summary = csv_rows(client, period=period)
    cards = html.split('id="table-summary"')[1].split("</section>")[0]
    shown = re.findall(r"<span><strong>(.*?):</strong> (.*?)</span>", html.split('id="report-context"')[1])
    shown += re.findall(r'<span class="caption">(.*?)</span> <strong>(.*?)</strong>', cards)
    assert len(shown) == len(summary) - 1 == 15
    assert [[value(cell) for cell in row] for row in summary[1:]] == [[value(unescape(name)), value(unescape(text))]
                                                                      for name, text in shown]
    assert ["Conversas iniciadas", "6"] in summary and ["Departamento", "Todos os departamentos"] in summary


def test_the_csv_is_written_as_a_spreadsheet_of_the_pages_language_reads_it(client, data):
    client.force_login(data["owner"])
    portuguese = dict(csv_rows(client, period="7d"))
    assert portuguese["Satisfação (média, de 1 a 5)"] == "3,7" and portuguese["Taxa de resposta da pesquisa"] == "75,0"
    client.cookies["django_language"] = "en"
    english = dict(csv_rows(client, delimiter=",", period="7d"))
    assert english["Satisfaction (average, 1 to 5)"] == "3.7" and english["Survey response rate"] == "75.0"


def test_an_unknown_table_is_a_404(client, data):
    client.force_login(data["owner"])
    assert client.get(URL, {"format": "csv", "table": "../../etc/passwd"}).status_code == 404


def test_csv_durations_are_hours_minutes_seconds(client, data):
    client.force_login(data["owner"])
    rows = {row[0]: row[1:] for row in csv_rows(client, period="7d", table="times")}
    assert rows["Primeira resposta"] == ["4", "0:02:00", "9:05:00", "0:02:00", "0:20:00"]
    assert rows["Resolução"] == ["4", "1:00:00", "12:00:00", "1:00:00", "2:50:00"]


# --- Who sees what -----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    for params in ({}, {"format": "csv"}):
        response = client.get(URL, params)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


def test_users_who_are_not_operators_are_refused(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("visitante", password="x"))
    assert client.get(URL).status_code == 403


def test_an_operator_sees_only_the_departments_open_to_them(client, data):
    Department.objects.filter(pk=data["suporte"].pk).update(restricted=True)
    # Ana's own conversation in Suporte: hers to see, the rest of Suporte is not.
    conversation_of("Sete", status="closed", department=data["suporte"], assigned_to=data["ana"],
                    started_at=at(D, "12:00"), waiting_since=at(D, "12:00"), first_response_at=at(D, "12:01"),
                    closed_at=at(D, "12:30"))
    client.force_login(data["ana"])
    response = page(client, period="7d")
    report = response.context["report"]
    assert (report["started"], report["handled"], report["closed"]) == (5, 3, 4)  # 1, 2, 5, 6 and 7
    assert report["csat"]["asked"] == 2  # 1 and 2; not Bia's 3 and 4
    assert report["received"] == 3  # not the Suporte customer's message
    assert [d.name for d in response.context["choice"].departments] == ["Vendas"]
    hidden = page(client, period="7d", department=data["suporte"].pk)
    assert "Departamento desconhecido" in hidden.content.decode()
    assert hidden.context["report"]["started"] == 5
    bia = figures(client, period="7d", operator=data["bia"].pk)
    assert (bia["started"], bia["closed"]) == (0, 0)  # Bia's conversations are all in Suporte
    mine = figures(client, period="7d", operator=data["ana"].pk)
    assert (mine["started"], mine["handled"]) == (3, 3)
    client.force_login(data["owner"])
    assert figures(client, period="7d")["started"] == 7


# --- Speed: the same statements for more data ----------------------------------------------------


def statements(client, **params):
    conversation._config_cache["at"] = float("-inf")  # the bot's hours read again each time, alike
    with CaptureQueriesContext(connection) as captured:
        page(client, **params)
    return len(captured)


@pytest.mark.parametrize("params", [{"period": "30d"}, {"period": "12m"}, {"period": "7d", "label": "vip"},
                                    {"period": "30d", "operator": "bia"}])
def test_the_same_number_of_statements_for_more_data(client, data, params):
    params = {key: data[value].pk if value in data else value for key, value in params.items()}
    client.force_login(data["ana"])
    page(client, **params)  # the day's first visit counts the finished days
    before = statements(client, **params)
    for index in range(8):
        session = conversation_of(f"Mais {index}", status="closed", department=data["suporte"],
                                  assigned_to=data["bia"], started_at=at(index % 5, "11:00"),
                                  waiting_since=at(index % 5, "11:00"), first_response_at=at(index % 5, "11:03"),
                                  closed_at=at(index % 5, "12:00"), csat_asked_at=at(index % 5, "12:00"),
                                  csat_score=1 + index % 5, csat_comment=f"comentário {index}")
        session.labels.add(data["vip"], Label.objects.create(name=f"L{index}"))
        inbound(session, at(index % 5, "11:00"))
        inbound(session, timezone.now())
        OnlineHour.objects.get_or_create(user=data["bia"], hour=at(index % 5, "11:00"))
    ReportDay.objects.all().delete()
    page(client, **params)
    assert statements(client, **params) == before


def test_holidays_and_hours_are_read_from_the_bots_configuration(client, data):
    Holiday.objects.create(date=at(D, "00:00").date(), name="Feriado")
    client.force_login(data["owner"])
    report = figures(client, period="7d")
    # On a holiday nothing is business time: D's waits and resolutions are 0 s of business hours.
    assert report["first_response"]["business"] == {"median": timedelta(0), "p90": timedelta(0)}


def test_the_table_reader_reads_links_and_cells():
    parser = Tables()
    parser.feed('<table id="table-x"><tr><th>A</th><td data-label="B"><a href="/c/1/">Abrir</a></td>'
                '<td> 9 h  05 min </td></tr></table><table><tr><td>not ours</td></tr></table>')
    assert parser.tables == {"x": [["A", "/c/1/", "9 h 05 min"]]}
    assert [value(text) for text in ("9 h 05 min", "0:02:00", "1.234", "3,7", "75,0%", "—", "Vendas")] == [
        32700, 120, 1234, 3.7, 75.0, None, "Vendas"]


# --- My day, on the overview ------------------------------------------------------------------


def test_my_day_counts_my_conversations_today_and_my_survey_of_30_days(client, data):
    now = timezone.now()
    ana, bia = data["ana"], data["bia"]
    for name, operator, waited in (("Hoje 1", ana, 180), ("Hoje 2", ana, 40), ("Hoje 3", bia, 5)):
        conversation_of(name, status="open", assigned_to=operator, started_at=now - timedelta(seconds=waited),
                        waiting_since=now - timedelta(seconds=waited), first_response_at=now)
    conversation_of("Velha", status="closed", assigned_to=ana, started_at=at(40, "10:00"),
                    closed_at=at(40, "10:30"), csat_asked_at=at(40, "10:30"), csat_score=1)
    # Ana's survey in 30 days: 5 (D) and 2 (D + 1's conversation, closed on D); the 40-day-old 1 is out.
    assert reports.my_day(ana) == {"handled": 2, "first_response": timedelta(seconds=40),
                                   "csat_average": 3.5, "csat_answered": 2}
    client.force_login(ana)
    html = client.get(reverse("chatbot:dashboard"), {"partial": "1"}).content.decode()
    card = html.split('id="my-day"')[1].split("</div>")[0]
    assert re.search(r"<strong>2</strong> <span class=\"muted\">conversas atendidas hoje", card)
    assert "<strong>40 s</strong>" in card and "<strong>3,5</strong>" in card and "2 respostas em 30 dias" in card
    # The reports agree: Ana today, and Ana over 30 days.
    today = figures(client, period="today", operator=ana.pk)
    assert (today["handled"], today["first_response"]["wall"]["median"]) == (2, timedelta(seconds=40))
    month = figures(client, period="30d", operator=ana.pk)["csat"]
    assert (month["average"], month["answered"]) == (3.5, 2)


def test_my_day_costs_the_overview_the_same_statements_for_more_data(client, data):
    client.force_login(data["ana"])
    overview = reverse("chatbot:dashboard")
    client.get(overview)  # the day's first visit counts the finished days
    with CaptureQueriesContext(connection) as before:
        client.get(overview)
    now = timezone.now()
    for index in range(6):
        conversation_of(f"Mais {index}", status="closed", assigned_to=data["ana"], started_at=now,
                        waiting_since=now - timedelta(minutes=index), first_response_at=now, closed_at=now,
                        csat_asked_at=now, csat_score=1 + index % 5)
    with CaptureQueriesContext(connection) as after:
        assert "Meu dia" in client.get(overview).content.decode()
    assert len(after) == len(before)

"""Reports benchmark (issue 15), the year data set of the dashboard benchmark: server time of the
reports page, its CSV and the overview (with "Meu dia") over a year of data in PostgreSQL; target
p95 <= 150 ms per page.

    .venv/bin/python bench/dashboard.py --year [--requests 30] [--reseed]

The first run seeds database hoztech_bench_reports with COPY (a few minutes); later runs reuse it
while it holds the right counts and is less than a day old, or seed it again with --reseed. The
data: 100,000 contacts, 200,000 conversations over 365 days (more on weekdays and in business
hours, six in ten handed to a person), 1,000,000 messages, 20 operators in 4 departments (Cobrança
restricted to its own), business hours Monday to Friday 08:00-18:00 and Saturday 08:00-12:00
(customers who write at night are answered after the opening), surveys on the handled ones (half
answered, comments mostly after low scores), one conversation in ten with a label, and the
operators' hours online (about 50,000 rows).

Requests go in-process through django.test.Client, logged in as `bench`, an operator of three
departments (Cobrança is hidden from them: the worst case of the reports' slices). Each page gets 3
warm-ups, then --requests timed ones; one more counts the SQL statements. The sums of final days
and months are kept in the cache (chatbot/reports.py, `gather`): two rows measure the pages with
the cache emptied before each request (the first visitor's time). Before them, two ways of
counting the year into ReportDay from nothing, each timed: the worker's `reporting.keep_up` runs
one after the other (as the worker does every 2 minutes after an upgrade), and a 12-month report
asked before the worker has counted anything (the page counts what it needs itself). The pages
are then measured as the product runs: the worker keeps the recent days counted. The last row is
the page that finds yesterday stale, which happens only when no worker runs.
"""

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    copy_rows,
    existing_database,
    fresh_database,
    machine,
    manage,
    percentile,
    save,
    save_state,
    server_env,
    setup_django,
    without_indexes,
)
from bench.common import (
    seeded_state as common_seeded_state,
)
from bench.dashboard import (  # noqa: E402
    BOT_TEXTS,
    CUSTOMER_TEXTS,
    FIRST_NAMES,
    LAST_NAMES,
    OPERATOR_TEXTS,
    PASSWORD,
    PNID,
    WARMUP,
    logged_in_client,
    measure,
    prepare,
    wa_id,
)

DATABASE = "hoztech_bench_reports"
CONTACTS, SESSIONS, MESSAGES, OPERATORS, DAYS = 100_000, 200_000, 1_000_000, 20, 365
TARGET_P95_MS = 150
OPERATOR = "bench"
DEPARTMENTS = ["Vendas", "Suporte", "Financeiro", "Cobrança"]  # the last one restricted
LABELS = ["VIP", "Atraso na entrega", "Troca", "Boleto", "Reclamação"]
ZONE = ZoneInfo("America/Sao_Paulo")
HOURS = {0: (8, 18), 1: (8, 18), 2: (8, 18), 3: (8, 18), 4: (8, 18), 5: (8, 12)}  # weekday: opens, closes
# When customers write: a little at night, most in the morning and the afternoon.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 18, 16, 12, 14, 16, 16, 14, 12, 10, 9, 8, 6, 4, 2]
COMMENTS = ["Demorou muito para responder", "Atendente muito educada, resolveu rápido!", "Não resolveram meu problema",
            "Fiquei esperando e ninguém respondeu", "Ótimo atendimento 👏", "O boleto veio errado de novo"]
RECOUNT = "reports 12 months, recounting (no worker)"
COLD = "reports, 12 months, nothing cached"
LABEL_COLD = "reports, 12 months, a label, nothing cached"


def at(epoch):
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


def next_open(epoch):
    """The first moment at or after `epoch` inside business hours (epoch seconds)."""
    local = datetime.fromtimestamp(epoch, tz=ZONE)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        if day.weekday() not in HOURS:
            continue
        opens, closes = (datetime.combine(day, clock(hour), tzinfo=ZONE) for hour in HOURS[day.weekday()])
        if local < closes:
            return max(local, opens).timestamp()
    return epoch


def configuration(now):
    """Number, departments, 20 operators, labels, business hours: (number, {department: [user ids]},
    [label ids])."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User

    from chatbot.dashboard.permissions import OPERATORS_GROUP
    from chatbot.models import BusinessHours, Department, Holiday, Label, PhoneNumber, WorkerBeat

    number = PhoneNumber.objects.create(phone_number_id=PNID, display_phone_number="+55 11 4000-1234",
                                        verified_name="HOZ TECH Demo", quality_rating="GREEN", checked_at=now)
    password = make_password(PASSWORD)
    users = [User.objects.create(username=OPERATOR, password=password, first_name="Bench")]
    users += [User.objects.create(username=f"operador{i}", password=password, first_name=FIRST_NAMES[i])
              for i in range(1, OPERATORS)]
    User.objects.create(username="admin", password=password, is_staff=True, is_superuser=True)
    Group.objects.create(name=OPERATORS_GROUP).user_set.add(*users)
    team = {}
    for position, name in enumerate(DEPARTMENTS):
        department = Department.objects.create(name=name, position=position, restricted=name == "Cobrança")
        members = users[5 * position:5 * position + 5]
        if name in ("Suporte", "Financeiro"):
            members = [users[0], *members]  # bench answers three departments, not Cobrança
        department.operators.add(*members)
        team[department.pk] = [user.pk for user in members]
    for weekday, (opens, closes) in HOURS.items():
        BusinessHours.objects.create(weekday=weekday, opens=clock(opens), closes=clock(closes))
    today = datetime.fromtimestamp(now.timestamp(), tz=ZONE).date()
    for days_ago, name in ((40, "Feriado municipal"), (120, "Feriado nacional"), (300, "Carnaval")):
        Holiday.objects.create(date=today - timedelta(days=days_ago), name=name)
    labels = [Label.objects.create(name=name, position=index).pk for index, name in enumerate(LABELS)]
    WorkerBeat.objects.create(worker_id="bench", hostname="bench", pid=1, last_seen=now)
    return number, team, labels, [user.pk for user in users]


def plan_sessions(rng, end, team):
    """Every conversation: its contact, times, department, operator, survey and message times."""
    day, departments = 86400.0, list(team)
    first_day = datetime.fromtimestamp(end - DAYS * day, tz=ZONE).replace(hour=0, minute=0, second=0)
    starts = []
    while len(starts) < SESSIONS:
        moment = first_day + timedelta(days=rng.randrange(DAYS + 1), hours=rng.choices(range(24), HOUR_WEIGHTS)[0],
                                       seconds=rng.uniform(0, 3600))
        # Fewer on Saturdays, fewer still on Sundays.
        if moment.timestamp() < end and rng.random() < (1, 1, 1, 1, 1, 0.6, 0.35)[moment.weekday()]:
            starts.append(moment.timestamp())
    starts.sort()
    contacts = [1 + rng.randrange(CONTACTS) for _ in starts]
    latest = {contact: index for index, contact in enumerate(contacts)}
    sessions = []
    for index, (start, contact) in enumerate(zip(starts, contacts, strict=True)):
        s = {"id": index + 1, "contact": contact, "start": start, "department": None, "assigned": None,
             "waiting": None, "responded": None, "closed": None, "asked": None, "score": None, "answered": None,
             "comment": ""}
        if rng.random() < 0.6:
            s["department"] = rng.choice(departments)
            s["waiting"] = start + rng.uniform(20, 120)
            opening = next_open(s["waiting"])
            wait = rng.expovariate(1 / 240) + (rng.random() < 0.1) * rng.uniform(600, 7200)
            s["responded"] = (opening + rng.uniform(60, 1500)) if opening > s["waiting"] else s["waiting"] + wait
            s["assigned"] = rng.choice(team[s["department"]])
            s["last"] = s["responded"] + rng.expovariate(1 / 1500)
            s["closed"] = s["last"] + (rng.uniform(30, 600) if rng.random() < 0.85 else 86400)
        else:
            s["last"] = start + rng.uniform(30, 600)
            s["closed"] = s["last"] + 86400
        s["status"] = "closed"
        if s["closed"] > end:
            s["closed"] = None
            s["status"] = "bot" if s["department"] is None else "open" if s["responded"] < end else "waiting"
            if s["status"] == "waiting":
                s["responded"] = s["assigned"] = None
        if latest[contact] != index and s["status"] != "closed":  # one open conversation per contact
            s["closed"], s["status"] = min(end - 1, s["last"] + 60), "closed"
        if s["status"] == "closed" and s["assigned"] and rng.random() < 0.9:
            s["asked"] = s["closed"]
            if rng.random() < 0.5:
                s["score"] = rng.choices([1, 2, 3, 4, 5], [5, 5, 10, 30, 50])[0]
                s["answered"] = min(end - 1, s["asked"] + rng.uniform(20, 3600))
                if rng.random() < (0.6 if s["score"] <= 2 else 0.08):
                    s["comment"] = rng.choice(COMMENTS)
        sessions.append(s)
    # Message counts: at least two each (the customer's first words and an answer), 1,000,000 in all.
    weights = [rng.expovariate(1) for _ in sessions]
    spare, total = MESSAGES - 2 * len(sessions), sum(weights)
    for s, weight in zip(sessions, weights, strict=True):
        s["count"] = 2 + int(weight / total * spare)
    for s in rng.choices(sessions, k=MESSAGES - sum(s["count"] for s in sessions)):
        s["count"] += 1
    return sessions


def contact_rows(rng, sessions):
    first, last = {}, {}
    for s in sessions:
        first.setdefault(s["contact"], s["start"])
        last[s["contact"]] = s["last"]
    for contact in range(1, CONTACTS + 1):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        seen = first.get(contact, sessions[0]["start"])
        yield contact, wa_id(contact), name, at(seen), at(last.get(contact, seen)), at(last.get(contact))


def session_rows(sessions, number_id):
    for s in sessions:
        yield (s["id"], s["contact"], number_id, s["status"], s["department"], s["assigned"], at(s["start"]),
               at(min(s["last"], s["closed"] or s["last"])), at(s["waiting"]), at(s["responded"]), at(s["closed"]),
               at(s["responded"]), at(s["asked"]), s["score"], at(s["answered"]), s["comment"])


def message_rows(rng, sessions, number_id, end):
    for s in sessions:
        finish = min(end - 1, s["last"])
        times = sorted([s["start"]] + [rng.uniform(s["start"], max(finish, s["start"] + 1))
                                       for _ in range(s["count"] - 1)])
        for seq, moment in enumerate(times):
            inbound = seq == 0 or rng.random() < 0.5
            if inbound:
                direction, source, text, sender, status = "in", "customer", rng.choice(CUSTOMER_TEXTS), None, "received"
            elif s["responded"] and moment >= s["responded"]:
                direction, source, text, sender, status = "out", "operator", rng.choice(OPERATOR_TEXTS), \
                    s["assigned"], "read"
            else:
                direction, source, text, sender, status = "out", "bot", rng.choice(BOT_TEXTS), None, "delivered"
            yield number_id, s["contact"], s["id"], direction, source, "text", text, {"body": text}, status, \
                at(moment), at(moment), sender


def online_rows(rng, users, end):
    """Each operator's hours online: a shift on the weekdays they work, mornings on some Saturdays."""
    today = datetime.fromtimestamp(end, tz=ZONE).date()
    for index, user in enumerate(users):
        start_hour = 8 + index % 3  # shifts from 8, 9 or 10 h
        for offset in range(DAYS, -1, -1):
            day = today - timedelta(days=offset)
            if day.weekday() == 6 or (day.weekday() == 5 and index % 2) or rng.random() < 0.08:
                continue
            hours = range(8, 12) if day.weekday() == 5 else range(start_hour, start_hour + 8)
            for hour in hours:
                moment = datetime.combine(day, clock(hour), tzinfo=ZONE)
                if moment.timestamp() < end:
                    yield user, moment


def seed():
    """Fill the (empty, migrated) database; returns what it did, also kept as the database's comment."""
    from django.core.management.color import no_style
    from django.db import connection, transaction
    from django.utils import timezone

    from chatbot.models import Contact, Message, OnlineHour, Session

    started = time.monotonic()
    rng = random.Random(15)
    now = timezone.now()
    end = now.timestamp()
    with transaction.atomic():
        number, team, labels, users = configuration(now)
    sessions = plan_sessions(rng, end, team)
    with transaction.atomic(), without_indexes(Contact, Session, Message, OnlineHour):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
        copy_rows(Contact, ["id", "wa_id", "name", "first_seen_at", "last_seen_at", "last_inbound_at"],
                  contact_rows(rng, sessions))
        copy_rows(Session, ["id", "contact", "phone_number", "status", "department", "assigned_to", "started_at",
                            "last_message_at", "waiting_since", "first_response_at", "closed_at", "assigned_at",
                            "csat_asked_at", "csat_score", "csat_answered_at", "csat_comment"],
                  session_rows(sessions, number.pk))
        copy_rows(Message, ["phone_number", "contact", "session", "direction", "source", "type", "text", "payload",
                            "status", "timestamp", "created_at", "sent_by"],
                  message_rows(rng, sessions, number.pk, end))
        copy_rows(Session.labels.through, ["session", "label"],
                  ((s["id"], labels[s["id"] % len(labels)]) for s in sessions if s["id"] % 10 == 0))
        copy_rows(OnlineHour, ["user", "hour"], online_rows(rng, users, end))
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [Contact, Session]):
                cursor.execute(sql)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT pg_database_size(current_database())")
        state = {"seeded_at": now.isoformat(), "seconds": round(time.monotonic() - started, 1),
                 "bytes": cursor.fetchone()[0], "sessions": len(sessions), "contacts": CONTACTS, "messages": MESSAGES,
                 "department": list(team)[0], "operator": users[0], "label": labels[0]}
    save_state(DATABASE, state)
    return state


def seeded_state():
    from chatbot.models import Message, Session

    return common_seeded_state(DATABASE, {Message: MESSAGES, Session: SESSIONS})


def recount_yesterday():
    """Make the reports count yesterday again, as they do every 10 minutes until a day is final."""
    from django.utils import timezone

    from chatbot.models import ReportDay

    yesterday = timezone.localdate() - timedelta(days=1)
    ReportDay.objects.filter(span="day", day=yesterday).update(counted_at=timezone.now() - timedelta(hours=1))


def main(options):
    url = existing_database(DATABASE) or fresh_database(DATABASE)
    env = server_env(url, LOG_LEVEL="WARNING", ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
                     TIME_ZONE="America/Sao_Paulo")
    manage(env, "migrate", "--noinput")
    setup_django(env)

    state = prepare(DATABASE, options, env, seeded_state, seed,
                    f"{SESSIONS:,} conversations over {DAYS} days, {MESSAGES:,} messages and {CONTACTS:,} contacts")
    from django.core.cache import cache

    from chatbot.models import ReportDay

    client = logged_in_client()
    base = "/chatbot/dashboard/reports/"
    department, operator, label = state["department"], state["operator"], state["label"]
    pages = {
        "reports, 30 days (the default)": base,
        "reports, 12 months": base + "?period=12m",
        "reports, 12 months, a department": base + f"?period=12m&department={department}",
        "reports, 12 months, an operator": base + f"?period=12m&operator={operator}",
        "reports, 12 months, a label": base + f"?period=12m&label={label}",
        "reports, 30 days, department and operator": base + f"?department={department}&operator={operator}",
        "reports, today": base + "?period=today",
        "CSV summary, 12 months": base + "?period=12m&format=csv",
        "CSV hours of the week, 12 months": base + "?period=12m&format=csv&table=staffing",
        "overview (with Meu dia)": "/chatbot/dashboard/",
        COLD: base + "?period=12m",
        LABEL_COLD: base + f"?period=12m&label={label}",
        RECOUNT: base + "?period=12m",
    }
    from django.utils import timezone

    from chatbot import conversation, reporting

    ReportDay.objects.all().delete()
    start = time.perf_counter()
    first = client.get(base + "?period=12m", secure=True)
    first_ms = round((time.perf_counter() - start) * 1000)
    if first.status_code != 200:
        sys.exit(f"FAIL: the first 12-month report answered {first.status_code}")
    rows = ReportDay.objects.count()
    ReportDay.objects.all().delete()
    runs = []
    while True:
        start = time.perf_counter()
        counted = reporting.keep_up(timezone.now(), conversation.load_config()[0])
        runs.append((time.perf_counter() - start) * 1000)
        if not counted:
            break
    runs.pop()  # the run that found nothing left
    recount_yesterday()
    start = time.perf_counter()
    reporting.keep_up(timezone.now(), conversation.load_config()[0])
    recount_ms = round((time.perf_counter() - start) * 1000)
    figures = {}
    for name, path in pages.items():
        before = {RECOUNT: recount_yesterday, COLD: cache.clear, LABEL_COLD: cache.clear}.get(name)
        status, times, queries, sql_ms = measure(client, path, options.requests, before)
        figures[name] = {
            "url": path, "status": status, "queries": queries,
            "p50_ms": round(percentile(times, 0.50), 1) if times else None,
            "p95_ms": round(percentile(times, 0.95), 1) if times else None,
            "sql_ms": round(sql_ms, 1) if sql_ms is not None else None,
            "ok": status == 200 and percentile(times, 0.95) <= TARGET_P95_MS,
        }
    result = {"machine": machine(), "contacts": CONTACTS, "sessions": SESSIONS, "messages": MESSAGES,
              "operators": OPERATORS, "days": DAYS, "seeding_s": state["seconds"],
              "database_mib": round(state["bytes"] / 2**20), "requests": options.requests,
              "target_p95_ms": TARGET_P95_MS, "pages": figures, "first_year_report_ms": first_ms,
              "report_rows": rows, "keep_up_runs": len(runs), "keep_up_max_ms": round(max(runs)),
              "keep_up_total_s": round(sum(runs) / 1000, 1), "keep_up_recount_ms": recount_ms}
    save("reports", result)
    print(f"Machine: {result['machine']}; PostgreSQL; {options.requests} requests per page after {WARMUP} warm-ups, "
          f"in-process (django.test.Client), logged in as the operator {OPERATOR}")
    print(f"{'page':44} {'status':>6} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8} {'SQL ms':>8}  target p95 <= "
          f"{TARGET_P95_MS} ms")
    for name, page in figures.items():
        verdict = "ok" if page["ok"] else "FAIL" if page["status"] == 200 else f"ERROR: answered {page['status']}"
        if name == RECOUNT and page["status"] == 200:
            verdict = "(only without a worker)"
        print(f"{name:44} {page['status']:>6} {page['p50_ms'] or '-':>8} {page['p95_ms'] or '-':>8} "
              f"{page['queries'] if page['queries'] is not None else '-':>8} {page['sql_ms'] or '-':>8}  {verdict}")
    print(f"Counting the year from nothing ({rows:,} rows): the worker in {len(runs)} runs of "
          f"{reporting.BACKFILL_DAYS} days, at most {max(runs):,.0f} ms each ({sum(runs) / 1000:.1f} s in all, one run "
          f"every {reporting.KEEP_UP_EVERY.seconds // 60} min); a 12-month report asked before it: {first_ms:,} ms")
    print(f"The worker recounting the days not final yet: {recount_ms} ms every 5 min")
    failed = [name for name, page in figures.items()
              if not page["ok"] and not (name == RECOUNT and page["status"] == 200)]
    if failed:
        sys.exit(f"FAIL: {', '.join(failed)}")

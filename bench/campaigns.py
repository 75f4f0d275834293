"""Campaign benchmark (issue 16), on PostgreSQL, with the product's defaults.

    .venv/bin/python bench/campaigns.py [--contacts 100000] [--seconds 30] [--workers 2]

1. **Create**: a campaign to a label of --contacts contacts (100,000): `campaigns.plan` (the
   audience, its skips, the content checked) and `campaigns.create` (one recipient row each), as
   the API and the wizard run them. Target: <= 10 s.
2. **Report**: that campaign, its messages given sent / delivered / read / failed statuses, Meta's
   codes and pricing categories and some replies: the dashboard's report page and its live poll,
   requested in-process (django.test.Client, logged in as an administrator, as bench/dashboard.py
   does), and the API's campaign object. Target: p95 <= 100 ms.
3. **Pacing**: a campaign of cap x --seconds recipients at the default cap of 80 messages/s, sent
   by --workers db_worker processes to a fake Graph API answering in 100-300 ms as Meta does,
   while 5 new customers a second write "Olá, bom dia!" to gunicorn and the bot answers them.
   Targets: all sends together >= 95 % of the cap over the campaign's full seconds, no second
   over the cap, every customer's first reply at Meta within 1 s.
"""

import argparse
import logging
import random
import sys
import time
import warnings
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    PYTHON,
    copy_rows,
    fake_graph_process,
    free_port,
    fresh_database,
    gunicorn,
    machine,
    manage,
    open_loop,
    percentile,
    process,
    save,
    server_env,
    setup_django,
    stop,
)
from bench.cpu import Meter, describe  # noqa: E402
from bench.outbound import TOKEN, fake  # noqa: E402
from bench.reply_latency import wait_for_workers, webhooks  # noqa: E402

DATABASE = "hoztech_bench_campaigns"
CAP = 80
TARGET_CREATE_S, TARGET_REPORT_P95_MS, TARGET_SHARE, TARGET_REPLY_S = 10, 100, 0.95, 1.0
BOT_RATE = 5
OWNER, PASSWORD = "dona", "bench-password-campaigns"
TEMPLATE = [{"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Oi {{1}}! Seu cupom {{2}} vale até domingo."},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Parar promoções"}]}]


def seed_contacts(count, label_name, offset=0):
    from django.db import transaction
    from django.utils import timezone

    from chatbot.models import Contact, Label

    now = timezone.now()
    label = Label.objects.create(name=label_name)
    first = (Contact.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    with transaction.atomic():
        copy_rows(Contact, ["id", "wa_id", "name", "first_seen_at", "last_seen_at", "attributes", "opted_out"], (
            (first + index, f"55{offset + index:011d}", f"Cliente {index}", now, now,
             {"cupom": f"C{index}"} if index % 3 else {}, index % 50 == 0)
            for index in range(count)))
        copy_rows(Contact.labels.through, ["contact_id", "label_id"],
                  ((first + index, label.pk) for index in range(count)))
    from django.db import connection

    with connection.cursor() as cursor:  # the ids were given: move the sequence past them
        cursor.execute("SELECT setval(pg_get_serial_sequence('chatbot_contact', 'id'), %s)", [first + count])


def create(label_name, **options):
    from chatbot import campaigns

    started = time.perf_counter()
    plan = campaigns.plan(template_name="promo", language="pt_BR", audience={"labels": [label_name]},
                          variables={"1": "{first_name|cliente}", "2": "{attr:cupom|BEMVINDO}"},
                          header={"link": "https://loja.example/promo.jpg"})
    planned = time.perf_counter()
    campaign = campaigns.create(name=f"Promoção {label_name}", plan=plan, **options)
    return campaign, round(planned - started, 2), round(time.perf_counter() - started, 2)


def give_statuses(campaign):
    """The campaign as it looks the next day: messages sent, delivered, read or failed (30 h ago,
    out of Meta's 24-hour messaging limit that phase 3's campaign counts against)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from chatbot.models import Campaign, Message, PhoneNumber, Recipient

    rng = random.Random(16)
    now = timezone.now()
    number = PhoneNumber.objects.default()
    rows = list(Recipient.objects.filter(campaign=campaign, state="pending").values_list("pk", "contact_id"))
    first = (Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    messages, links = [], []
    for index, (recipient, contact) in enumerate(rows):
        sent = now - timedelta(hours=30) + timedelta(seconds=index / CAP)
        roll = rng.random()
        status = "failed" if roll < 0.03 else "sent" if roll < 0.1 else "delivered" if roll < 0.5 else "read"
        delivered = sent + timedelta(seconds=rng.uniform(1, 600)) if status in ("delivered", "read") else None
        read = delivered + timedelta(minutes=rng.uniform(1, 300)) if status == "read" else None
        code = rng.choice([131026, 131049, 131050, 131000]) if status == "failed" else None
        messages.append((first + index, number.pk, contact, "out", "campaign", "template", "promo", {"name": "promo"},
                         f"wamid.CAMPAIGN{index}", status, sent, sent, sent, delivered, read,
                         sent if status == "failed" else None, code, "marketing" if delivered else ""))
        links.append((recipient, first + index, sent, sent + timedelta(hours=2) if rng.random() < 0.04 else None))
    with transaction.atomic():
        copy_rows(Message, ["id", "phone_number_id", "contact_id", "direction", "source", "type", "text", "payload",
                            "wamid", "status", "timestamp", "created_at", "sent_at", "delivered_at", "read_at",
                            "failed_at", "error_code", "pricing_category"], messages)
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence('chatbot_message', 'id'), %s)",
                           [first + len(rows)])
            cursor.execute("CREATE TEMP TABLE links (id bigint, message_id bigint, queued_at timestamptz, "
                           "replied_at timestamptz)")
        from bench.common import _copy_text

        with connection.cursor() as cursor:
            import io

            cursor.copy_expert("COPY links FROM STDIN", io.StringIO(
                "".join("\t".join(map(_copy_text, link)) + "\n" for link in links)))
            cursor.execute("UPDATE chatbot_recipient r SET state = 'queued', message_id = l.message_id, "
                           "queued_at = l.queued_at, replied_at = l.replied_at FROM links l WHERE r.id = l.id")
            cursor.execute("DROP TABLE links")
        Campaign.objects.filter(pk=campaign.pk).update(status="running", started_at=now - timedelta(hours=30))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(get, requests):
    for _ in range(3):
        get()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        status = get()
        times.append((time.perf_counter() - started) * 1000)
    return status, round(percentile(times, 0.5), 1), round(percentile(times, 0.95), 1)


def report_figures(campaign, requests):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    warnings.filterwarnings("ignore", "No directory at")
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    get_user_model().objects.create_superuser(OWNER, password=PASSWORD)
    client = Client(raise_request_exception=False)
    client.login(username=OWNER, password=PASSWORD)
    from chatbot.models import ApiToken

    _token, secret = ApiToken.objects.create_token("bench", scopes=["campaigns"])
    pages = {
        "report page": reverse("chatbot:dashboard-campaign", args=[campaign.pk]),
        "report, live poll": reverse("chatbot:dashboard-campaign-live", args=[campaign.pk]),
        "campaign list": reverse("chatbot:dashboard-campaigns"),
        "API campaign object": reverse("chatbot:api-campaign", args=[campaign.pk]),
    }
    figures = {}
    for name, path in pages.items():
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if name.startswith("API") else {}
        status, p50, p95 = measure(lambda path=path, headers=headers: client.get(path, secure=True,
                                                                                 **headers).status_code, requests)
        figures[name] = {"status": status, "p50_ms": p50, "p95_ms": p95}
    return figures


def pacing(env, url, graph_pid, workers, seconds):
    """Phase 3; returns its figures."""
    from django.utils import timezone

    from chatbot.models import Campaign

    count = CAP * seconds
    seed_contacts(count, "pacing", offset=10**9)
    from chatbot.models import PhoneNumber

    PhoneNumber.objects.update(messaging_limit="TIER_10K")  # as `whatsapp_chatbot check` reads it
    port = free_port()
    worker = [PYTHON, "manage.py", "db_worker", "--no-reload", "--queue-name", "*", "--interval", "0.2"]
    with ExitStack() as stack:
        web = stack.enter_context(gunicorn("hoztech.wsgi", port, env, 2))
        procs = [stack.enter_context(process(worker + ["--worker-id", f"campaign{index}"], env))
                 for index in range(workers)]
        wait_for_workers(workers)
        open_loop(port, "/chatbot/webhook/", webhooks(10, prefix="5531"), 10)  # warm-up, not measured
        time.sleep(3)
        fake(url, "/_fake/reset", "POST")
        meter = Meter({"db_worker": [proc.pid for proc in procs], "gunicorn": [web.pid], "fake_graph": [graph_pid]},
                      DATABASE).start()
        campaign, _plan_s, create_s = create("pacing")
        due = {}
        _, failures = open_loop(port, "/chatbot/webhook/", webhooks(BOT_RATE * (seconds - 5)), BOT_RATE,
                                due_times=due)
        deadline = time.monotonic() + seconds + 60
        while Campaign.objects.get(pk=campaign.pk).status != "finished" and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)
        cpu = meter.stop()
    stats = fake(url, "/_fake/stats")
    per_second = sorted((int(second), sends) for second, sends in stats["per_second"].items())
    full = [sends for _second, sends in per_second[1:-1]]
    arrivals = stats["first_send_to"]
    replies = [arrivals[f"+5521{index:09d}"] - moment for index, moment in due.items()
               if f"+5521{index:09d}" in arrivals]
    return {
        "recipients": campaign.recipients, "create_s": create_s, "status": Campaign.objects.get(pk=campaign.pk).status,
        "sends": stats["messages"], "seconds": len(per_second), "rate": round(sum(full) / max(len(full), 1), 1),
        "busiest_second": max(full, default=0), "share": round(sum(full) / max(len(full), 1) / CAP, 3),
        "customers": len(due), "answered": len(replies), "webhook_failures": failures,
        "reply_p50_s": round(percentile(replies, 0.5), 3), "reply_p99_s": round(percentile(replies, 0.99), 3),
        "reply_max_s": round(max(replies, default=float("nan")), 3), "cpu_seconds": cpu,
        "finished_at": str(timezone.now()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=30, help="the pacing campaign's length at the cap")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--no-report", action="store_true", help="skip phase 2")
    options = parser.parse_args()

    database_url = fresh_database(DATABASE)
    graph, url = fake_graph_process(TOKEN, latency_ms="100-300")
    try:
        # "testserver": phase 2's in-process django.test.Client.
        env = server_env(database_url, WHATSAPP_GRAPH_URL=url, WHATSAPP_ACCESS_TOKEN=TOKEN,
                         WHATSAPP_MESSAGES_PER_SECOND=CAP, ALLOWED_HOSTS="testserver,127.0.0.1,localhost")
        manage(env, "migrate", "--noinput")
        setup_django(env)
        from chatbot.models import Template

        Template.objects.create(name="promo", language="pt_BR", category="MARKETING", status="APPROVED",
                                components=TEMPLATE)
        seed_contacts(options.contacts, "clientes")
        # Scheduled for next week: phase 1 measures the creation, and nothing sends it.
        from django.utils import timezone

        big, plan_s, create_s = create("clientes", scheduled_at=timezone.now() + timedelta(days=7))
        give_statuses(big)
        report = {} if options.no_report else report_figures(big, options.requests)
        from chatbot.models import Campaign

        Campaign.objects.filter(pk=big.pk).update(status="finished")  # not sent by phase 3's workers
        paced = pacing(env, url, graph.pid, options.workers, options.seconds)
    finally:
        stop(graph)

    result = {"machine": machine(), "contacts": options.contacts, "recipients": big.recipients,
              "skipped": big.skipped, "plan_s": plan_s, "create_s": create_s, "report": report, "pacing": paced}
    save("campaigns", result)
    print(f"Machine: {result['machine']}; PostgreSQL; fake Graph API answering in 100-300 ms; product defaults")
    print(f"create: {big.recipients:,} recipients ({sum(big.skipped.values()):,} skipped) in {create_s} s "
          f"(plan {plan_s} s; target <= {TARGET_CREATE_S} s)")
    for name, page in report.items():
        print(f"{name:24} status {page['status']}  p50 {page['p50_ms']} ms  p95 {page['p95_ms']} ms "
              f"(target <= {TARGET_REPORT_P95_MS})")
    print(f"pacing: cap {CAP}, {options.workers} workers: {paced['rate']} messages/s ({paced['share']:.1%} of the cap; "
          f"target >= {TARGET_SHARE:.0%}), busiest second {paced['busiest_second']} (target <= {CAP}); "
          f"{paced['sends']} sends, campaign {paced['status']}")
    print(f"bot during the campaign: {paced['answered']}/{paced['customers']} customers answered, first reply p50 "
          f"{paced['reply_p50_s']} s, p99 {paced['reply_p99_s']} s, max {paced['reply_max_s']} s "
          f"(target <= {TARGET_REPLY_S} s)")
    print(describe(paced["cpu_seconds"], paced["sends"]))
    broken = []
    if create_s > TARGET_CREATE_S:
        broken.append("create")
    broken += [name for name, page in report.items() if page["status"] != 200 or page["p95_ms"] > TARGET_REPORT_P95_MS]
    if paced["share"] < TARGET_SHARE or paced["busiest_second"] > CAP:
        broken.append("pacing")
    if paced["answered"] < paced["customers"] or paced["reply_max_s"] > TARGET_REPLY_S:
        broken.append("bot replies")
    if broken:
        sys.exit(f"FAIL: {', '.join(broken)}")


if __name__ == "__main__":
    main()

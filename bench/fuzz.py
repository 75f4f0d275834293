"""Fuzz run (issue 8): generated webhook bodies and send-API requests, in-process through Django's
test client, on a fresh PostgreSQL database (or SQLite with --sqlite).

    .venv/bin/python bench/fuzz.py [--webhooks 10000] [--api 10000] [--seed 8 29 ...] [--sqlite]

The strategies are those of chatbot/tests/test_fuzz.py (the suite runs a few hundred of each,
over a few seeds); here Hypothesis only generates (no shrinking), each seed gets the given numbers
of webhooks and requests, and every answer is counted. Accepted
webhooks are applied by `inbound.drain` as a worker would, and API sends are "sent" in sandbox
mode, so the whole pipeline sees the input. Prints the counts of 2xx/4xx/5xx, contract
violations and the exceptions logged (ERROR records or records with a traceback), with a few
examples of each; exit 1 on any 5xx, violation or exception.
"""

import argparse
import collections
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fresh_database, manage, server_env, setup_django  # noqa: E402

DATABASE = "hoztech_bench_fuzz"
EXAMPLES = 3  # kept per kind of finding


class Collector(logging.Handler):
    """Every ERROR record and every record carrying a traceback, grouped by logger and exception."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.found = collections.Counter()

    def emit(self, record):
        if record.levelno < logging.ERROR and not record.exc_info:
            return
        kind = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else "-"
        detail = str(record.exc_info[1])[:160] if record.exc_info and record.exc_info[1] else ""
        key = f"{record.name}: {kind}: {detail.splitlines()[0] if detail else record.getMessage()[:120]}"
        self.found[key] += 1


def capture_logs():
    collector = Collector()
    for name in ("", "chatbot", "chatbot.webhook", "django", "django.request", "django_tasks"):
        logger = logging.getLogger(name)
        logger.handlers = [collector]
        logger.propagate = False
        logger.setLevel(logging.INFO)
    return collector


class Tally:
    def __init__(self, name):
        self.name, self.statuses, self.violations = name, collections.Counter(), collections.Counter()
        self.examples = collections.defaultdict(list)

    def note(self, status, body, violation=""):
        self.statuses[status] += 1
        if violation or status >= 500:
            self.violation(violation or f"HTTP {status}", body)

    def violation(self, kind, body):
        self.violations[kind] += 1
        if len(self.examples[kind]) < EXAMPLES:
            self.examples[kind].append(body[:400])

    def classes(self):
        counts = collections.Counter(f"{status // 100}xx" for status in self.statuses.elements())
        return {key: counts[key] for key in ("2xx", "4xx", "5xx")}


def run(strategy, examples, seed, function):
    """Call function(example) for `examples` generated values (generation only: nothing to shrink)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed

    @fixed_seed(seed)
    @settings(max_examples=examples, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def loop(example):
        function(example)

    loop()


def fuzz_webhooks(count, seed, tally):
    from django.test import Client

    from chatbot import inbound
    from chatbot.models import WebhookEvent
    from chatbot.tests import test_fuzz
    from chatbot.tests.helpers import post_signed

    client = Client(raise_request_exception=False)
    first = (WebhookEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1

    def one(body):
        response = post_signed(client, body)
        violation = "" if response.status_code in (200, 400) else f"webhook answered {response.status_code}"
        tally.note(response.status_code, body, violation)
        if tally.statuses.total() % 500 == 0:
            inbound.drain(limit=None)

    run(test_fuzz.WEBHOOK_BODIES, count, seed, one)
    inbound.drain(limit=None)
    events = WebhookEvent.objects.filter(pk__gte=first)
    results = collections.Counter(events.values_list("result", flat=True))
    for error, body in events.filter(result="failed").values_list("error", "body"):
        tally.violation(f"event failed to apply: {error.splitlines()[0][:160]}", body.encode())
    return dict(results)


def fuzz_api(count, seed, tally):
    from django.test import Client
    from django.utils import timezone
    from hypothesis import strategies as st

    from chatbot import outbox
    from chatbot.models import ApiToken, Contact
    from chatbot.tests import test_fuzz

    Contact.objects.update_or_create(wa_id=test_fuzz.CUSTOMER, defaults={"last_inbound_at": timezone.now()})
    token = ApiToken.objects.create_token("fuzz")[1]
    client = Client(raise_request_exception=False)

    def one(example):
        body, key = example
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        if key:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        response = client.post("/chatbot/send/", body, content_type="application/json", **headers)
        tally.note(response.status_code, body, contract_violation(response))
        if tally.statuses.total() % 500 == 0:
            while outbox.drain():
                pass

    run(st.tuples(test_fuzz.API_BODIES, test_fuzz.IDEMPOTENCY_KEYS), count, seed, one)
    while outbox.drain():
        pass


def contract_violation(response):
    """What in an answer of POST /chatbot/send/ breaks design.md's contract ("" when nothing)."""
    from chatbot.tests.test_fuzz import API_STATUSES

    if response.status_code not in API_STATUSES:
        return f"send answered {response.status_code}"
    try:
        answer = json.loads(response.content)
    except ValueError:
        return f"{response.status_code} without JSON"
    if response.status_code == 202:
        return "" if set(answer) == {"id", "status", "to", "type"} else "202 without the contract's keys"
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str) or not error.get("message"):
        return f"{response.status_code} without the contract's error JSON"
    if response.status_code == 429 and not response.get("Retry-After"):
        return "429 without Retry-After"
    return ""


def report(tally, extra=None):
    print(f"\n{tally.name}: {tally.statuses.total()} requests, {tally.classes()}")
    print(f"  statuses: {dict(sorted(tally.statuses.items()))}")
    if extra:
        print(f"  {extra}")
    for violation, number in tally.violations.most_common():
        print(f"  VIOLATION x{number}: {violation}")
        for body in tally.examples[violation]:
            print(f"      e.g. {body!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--api", type=int, default=10_000)
    parser.add_argument("--seed", type=int, nargs="+", default=[8, 29, 404],
                        help="one run per seed (a bug may hide from one seed: 29 once found one 8 missed)")
    parser.add_argument("--sqlite", action="store_true", help="a throwaway SQLite file instead of PostgreSQL")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No directory at")  # WhiteNoise: no collectstatic here

    scratch = Path(tempfile.mkdtemp(prefix="hoztech-fuzz-"))
    database_url = f"sqlite:///{scratch / 'fuzz.sqlite3'}" if args.sqlite else fresh_database(DATABASE)
    env = server_env(database_url, ALLOWED_HOSTS="testserver,127.0.0.1,localhost", LOG_DIR=scratch,
                     API_REQUESTS_PER_MINUTE=10**9, WHATSAPP_ACCESS_TOKEN="", MEDIA_ROOT=scratch / "media")
    manage(env, "migrate", "--noinput")
    setup_django(env)
    collector = capture_logs()

    started = time.monotonic()
    webhooks, api = Tally("webhook POST /chatbot/webhook/"), Tally("send API POST /chatbot/send/")
    events = collections.Counter()
    for seed in args.seed:
        events.update(fuzz_webhooks(args.webhooks, seed, webhooks))
        fuzz_api(args.api, seed, api)
    elapsed = time.monotonic() - started

    seeds = ", ".join(map(str, args.seed))
    print(f"fuzz run on {'SQLite' if args.sqlite else 'PostgreSQL'}, seeds {seeds}, {elapsed:.0f} s")
    report(webhooks, f"stored events by result: {dict(events)}")
    report(api)
    print(f"\nexceptions in the logs: {collector.found.total()}")
    for key, number in collector.found.most_common():
        print(f"  x{number}: {key}")
    failed = webhooks.violations.total() + api.violations.total() + collector.found.total()
    print("\nRESULT:", "FAIL" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

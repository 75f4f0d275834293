"""Crash test (issue 8): mixed load while `kill -9` hits gunicorn workers and `db_worker`
processes at random; afterwards every promise of the pipeline is checked.

    .venv/bin/python bench/crash.py [--seconds 120] [--inbound-rate 10] [--api-rate 20] [--seed 8]

Load, open loop, all to 127.0.0.1: signed inbound webhooks (each from a new customer, so each gets
the bot's first turn), API sends (POST /chatbot/send/ with a bearer token from `whatsapp_chatbot
create-api-token`, each to its own recipient), and a "delivered" status webhook for every message
the fake Graph API accepted, carrying the message's `biz_opaque_callback_data` as Meta echoes it.
Servers: gunicorn (one master, 2 sync workers), 2 `db_worker` processes, the fake Graph API in its
own process, a fresh PostgreSQL database. A killer thread sends SIGKILL every 5-15 s to a random
gunicorn worker (the master starts a new one) or a random db_worker (this script starts a new one).

Afterwards webhooks that got no 200 are delivered again (Meta retries), the script waits until the
queues are empty, then checks:

- every webhook answered 200 is stored (its raw body in a WebhookEvent row: exactly once unless it
  was delivered more than once) and applied (no event pending or failed; one Message per inbound
  wamid; each status applied to its message);
- every accepted send (202) ends `sent`/`delivered`/`read` or `failed`: none `queued`. A message
  may stay `sending` under the documented in-flight rule (chatbot/outbox.py: a worker died after
  claiming it, so its request may have reached Meta; it is never sent again and `outbox.sweep`
  fails it as "delivery unknown" once `claimed_at` is IN_FLIGHT_TIMEOUT = 10 min old, within the
  worker's 30 s sweep interval). The product reads no setting for that timeout, so these rows are
  counted and listed with the time the sweep will fail them, not waited for;
- the fake Graph API accepted no message twice (sends counted per `biz_opaque_callback_data`). The
  in-flight rule allows no second copy (it allows a message to end "delivery unknown" instead), so
  any duplicate is a broken promise.

Prints a table, saves bench/results/crash.json, exits 1 on a broken promise.
"""

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    GRAPH_TOKEN,
    PNID,
    Traffic,
    Workers,
    api_token,
    children,
    fake_call,
    fake_graph_process,
    free_port,
    fresh_database,
    gunicorn,
    machine,
    manage,
    save,
    server_env,
    setup_django,
    signed_headers,
    status_webhook,
    stop,
    verdict,
    wait_until,
)

DATABASE = "hoztech_bench_crash"
WEBHOOK, SEND = "/chatbot/webhook/", "/chatbot/send/"
FINAL = {"sent", "delivered", "read", "played", "failed"}


def wait_for_workers(count, timeout=60):
    from chatbot.models import WorkerBeat

    return wait_until(lambda: WorkerBeat.objects.count() >= count, timeout, 0.2)


def seed_recipients(count, prefix):
    """Contacts who wrote a moment ago (the API refuses free text outside the 24-hour window)."""
    from django.utils import timezone

    from chatbot.models import Contact

    now = timezone.now()
    Contact.objects.bulk_create([Contact(wa_id=f"{prefix}{index:09d}", last_inbound_at=now)
                                 for index in range(count)], batch_size=2000)


def inbound_request(port, index, run_id):
    from chatbot.whatsapp.webhook import customer_message

    wamid = f"wamid.CRASH{run_id}.{index}"
    body = customer_message(phone_number_id=PNID, wa_id=f"5551{index:09d}", name=f"Cliente {index}", wamid=wamid,
                            text="Olá, bom dia!")
    return {"kind": "inbound", "key": wamid, "port": port, "path": WEBHOOK, "body": body,
            "headers": signed_headers(body)}


def api_request(port, index, token, prefix):
    to = f"{prefix}{index:09d}"
    body = json.dumps({"to": to, "type": "text", "text": {"body": f"Seu pedido {index} saiu para entrega"}}).encode()
    return {"kind": "api", "key": to, "port": port, "path": SEND, "body": body,
            "headers": {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}}


class StatusFeed(threading.Thread):
    """Meta's side of statuses: a "delivered" webhook for each message the fake accepted (answer
    lost or not), with the callback data echoed, posted to the `ports` in turn."""

    def __init__(self, traffic, url, ports):
        super().__init__(name="status-feed", daemon=True)
        self.traffic, self.url, self.ports = traffic, url, ports
        self.seen, self.requests = 0, []
        self.stopping = threading.Event()

    def poll(self):
        sends = fake_call(self.url, f"/_fake/sends?since={self.seen}")["sends"]
        self.seen += len(sends)
        for callback, to, _status, wamid, _dropped, _time in sends:
            if wamid:
                body = status_webhook(wamid=wamid, status="delivered", recipient=to.lstrip("+"), callback=callback)
                request = {"kind": "status", "key": callback, "wamid": wamid, "body": body,
                           "port": self.ports[len(self.requests) % len(self.ports)], "path": WEBHOOK,
                           "headers": signed_headers(body)}
                self.requests.append(request)
                self.traffic.submit(request)
        return len(sends)

    def run(self):
        while not self.stopping.wait(0.5):
            try:
                self.poll()
            except OSError:
                continue


class Killer(threading.Thread):
    """SIGKILL, every `low`-`high` seconds, a random gunicorn worker (child of a master in
    `masters`) or a random db_worker of `workers` (restarted at once)."""

    def __init__(self, masters, workers, low, high, rng):
        super().__init__(name="killer", daemon=True)
        self.masters, self.workers, self.low, self.high, self.rng = masters, workers, low, high, rng
        self.stopping = threading.Event()
        self.kills = []

    def run(self):
        started = time.monotonic()
        while not self.stopping.wait(self.rng.uniform(self.low, self.high)):
            web = [pid for master in self.masters for pid in children(master)]
            targets = [("gunicorn", pid) for pid in web] + [("db_worker", i) for i in range(len(self.workers.procs))]
            kind, target = self.rng.choice(targets)
            if kind == "gunicorn":
                try:
                    os.kill(target, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                pid = target
            else:
                pid = self.workers.kill(target)
            self.kills.append({"at_s": round(time.monotonic() - started, 1), "process": kind, "pid": pid})


def settle(feed, traffic, timeout):
    """Wait until no message is queued, no webhook event pending, the fake saw no new send for
    3 s and every status for it was answered; returns the seconds it took (None: timed out)."""
    from chatbot.models import Message, PendingStatus, WebhookEvent

    started, quiet_since, last_seen = time.monotonic(), time.monotonic(), -1
    while time.monotonic() - started < timeout:
        feed.poll()
        if feed.seen != last_seen:
            last_seen, quiet_since = feed.seen, time.monotonic()
        traffic.redeliver(feed.requests, lambda status: status == 200, 5)
        busy = (Message.objects.filter(status="queued").exists()
                or WebhookEvent.objects.filter(result="pending").exists()
                or PendingStatus.objects.exists())
        if not busy and time.monotonic() - quiet_since > 3:
            return round(time.monotonic() - started, 1)
        time.sleep(1)
    return None


def check(inbound, api, statuses, sends):
    """The promises, from the database and the fake's send log; returns (figures, broken)."""
    from django.db.models import Count

    from chatbot import outbox
    from chatbot.models import Message, WebhookEvent

    broken = []
    stored = Counter(WebhookEvent.objects.values_list("body", flat=True).iterator())
    acked = [r for r in inbound + statuses if r.get("status") == 200]
    missing = [r for r in acked if stored[r["body"].decode()] == 0]
    extra = [r for r in acked if r["tries"] == 1 and stored[r["body"].decode()] > 1]
    if missing:
        broken.append(f"{len(missing)} webhooks answered 200 are not stored")
    if extra:
        broken.append(f"{len(extra)} webhooks delivered once are stored more than once")
    results = dict(WebhookEvent.objects.values_list("result").annotate(n=Count("pk")))
    if results.get("pending") or results.get("failed"):
        broken.append(f"webhook events not applied: {results}")

    wamids = [r["key"] for r in inbound if r.get("status") == 200]
    per_wamid = Counter(Message.objects.filter(wamid__in=wamids).values_list("wamid", flat=True))
    lost = [w for w in wamids if per_wamid[w] == 0]
    twice = [w for w in wamids if per_wamid[w] > 1]
    if lost or twice:
        broken.append(f"inbound messages: {len(lost)} acked but not applied, {len(twice)} applied twice")

    delivered = {int(r["key"][4:]) for r in statuses if r.get("status") == 200 and r["key"].startswith("hoz:")}
    behind = Message.objects.filter(pk__in=delivered).exclude(status__in=["delivered", "read", "failed"]).count()
    if behind:
        broken.append(f"{behind} status webhooks answered 200 not applied to their message")

    accepted = [json.loads(r["answer"])["id"] for r in api if r.get("status") == 202]
    api_status = dict(Message.objects.filter(pk__in=accepted).values_list("status").annotate(n=Count("pk")))
    out_status = dict(Message.objects.filter(direction="out").values_list("status").annotate(n=Count("pk")))
    if out_status.get("queued"):
        broken.append(f"{out_status['queued']} outbound messages still queued")
    in_flight = list(Message.objects.filter(direction="out", status="sending").values("pk", "claimed_at"))
    unswept = [row["pk"] for row in in_flight if row["claimed_at"] is None]
    if unswept:
        broken.append(f"{len(unswept)} messages `sending` with no claimed_at: the sweep never fails them")
    fake_seen = Counter(callback for callback, _to, _status, wamid, _dropped, _t in sends if wamid)
    duplicates = {callback: n for callback, n in fake_seen.items() if n > 1}
    if duplicates:
        broken.append(f"{len(duplicates)} messages accepted twice or more by the fake Graph API")
    pending_sweep = [{"id": row["pk"], "reached_fake": fake_seen[f"hoz:{row['pk']}"] > 0,
                      "failed_by_sweep_after": (row["claimed_at"] + outbox.IN_FLIGHT_TIMEOUT).isoformat(),
                      "at_latest": (row["claimed_at"] + outbox.IN_FLIGHT_TIMEOUT + timedelta(seconds=30)).isoformat()}
                     for row in in_flight if row["claimed_at"]]

    figures = {
        "inbound_posted": len(inbound), "inbound_acked": len(wamids),
        "inbound_redelivered": sum(1 for r in inbound if r["tries"] > 1),
        "statuses_posted": len(statuses), "statuses_acked": sum(1 for r in statuses if r.get("status") == 200),
        "webhooks_not_stored": len(missing), "webhooks_stored_twice": len(extra), "events_by_result": results,
        "inbound_applied_once": sum(1 for w in wamids if per_wamid[w] == 1),
        "statuses_not_applied": behind,
        "api_posted": len(api), "api_accepted": len(accepted),
        "api_answers": dict(Counter(str(r.get("status")) for r in api)),
        "api_final": api_status, "outbound_by_status": out_status,
        "fake_sends": len(sends), "fake_accepted_messages": len(fake_seen), "duplicates": len(duplicates),
        "duplicate_examples": dict(list(duplicates.items())[:5]),
        "in_flight_sending": len(in_flight),
        "in_flight_reached_fake": sum(1 for row in pending_sweep if row["reached_fake"]),
        "in_flight_rows": pending_sweep[:20],
    }
    return figures, broken


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--inbound-rate", type=float, default=10, help="new customers' messages per second")
    parser.add_argument("--api-rate", type=float, default=20, help="API sends per second")
    parser.add_argument("--cap", type=int, default=80, help="WHATSAPP_MESSAGES_PER_SECOND")
    parser.add_argument("--kill-every", type=float, nargs=2, default=(5, 15), metavar=("MIN", "MAX"))
    parser.add_argument("--settle", type=int, default=180, help="seconds to wait for the queues to empty")
    parser.add_argument("--seed", type=int, default=8)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    run_id = time.time_ns()

    database_url = fresh_database(DATABASE)
    graph, url = fake_graph_process()
    workers = None
    try:
        env = server_env(database_url, WHATSAPP_GRAPH_URL=url, WHATSAPP_ACCESS_TOKEN=GRAPH_TOKEN, LOG_LEVEL="WARNING",
                         WHATSAPP_MARK_READ="false", WHATSAPP_MESSAGES_PER_SECOND=options.cap,
                         API_REQUESTS_PER_MINUTE=1_000_000)
        manage(env, "migrate", "--noinput")
        setup_django(env)
        api_count = int(options.api_rate * options.seconds)
        seed_recipients(api_count, "5541")
        token = api_token(env)
        port = free_port()
        traffic = Traffic(threads=32)
        with ExitStack() as stack:
            web = stack.enter_context(gunicorn("hoztech.wsgi", port, env, 2))
            workers = Workers(env, 2, prefix="crash")
            wait_for_workers(2)
            feed = StatusFeed(traffic, url, [port])
            killer = Killer([web.pid], workers, *options.kill_every, rng)
            loads = [
                threading.Thread(target=traffic.paced, args=(lambda i: inbound_request(port, i, run_id),
                                                             options.inbound_rate, options.seconds)),
                threading.Thread(target=traffic.paced, args=(lambda i: api_request(port, i, token, "5541"),
                                                             options.api_rate, options.seconds)),
            ]
            started = time.monotonic()
            for thread in [feed, killer, *loads]:
                thread.start()
            for thread in loads:
                thread.join()
            killer.stopping.set()
            killer.join()
            load_seconds = round(time.monotonic() - started, 1)
            time.sleep(2)  # answers of the last requests
            inbound = [r for r in traffic.done if r["kind"] == "inbound"]
            api = [r for r in traffic.done if r["kind"] == "api"]
            redelivered = traffic.redeliver(inbound, lambda status: status == 200, 60)
            feed.stopping.set()
            feed.join()
            settled = settle(feed, traffic, options.settle)
            sends = fake_call(url, "/_fake/sends")["sends"]
            figures, broken = check(inbound, api, feed.requests, sends)
            traffic.close()
            workers.stop()
    finally:
        if workers:
            workers.stop()
        stop(graph)

    if settled is None:
        broken.append(f"the queues did not empty within {options.settle} s after the load")
    result = {
        "machine": machine(), "seconds": options.seconds, "load_seconds": load_seconds,
        "inbound_rate": options.inbound_rate, "api_rate": options.api_rate, "cap": options.cap,
        "kills": killer.kills, "kill_count": len(killer.kills),
        "gunicorn_kills": sum(1 for k in killer.kills if k["process"] == "gunicorn"),
        "db_worker_kills": sum(1 for k in killer.kills if k["process"] == "db_worker"),
        "redelivered_webhooks": redelivered, "settled_s": settled, **figures, "broken": broken,
    }
    save("crash", result)
    print(f"Machine: {result['machine']}; gunicorn 2 workers, 2 db_worker processes, fake Graph API; PostgreSQL")
    print(f"{options.seconds} s of load; {len(killer.kills)} SIGKILLs ({result['gunicorn_kills']} gunicorn workers, "
          f"{result['db_worker_kills']} db_workers); queues empty {settled} s after the load")
    rows = [
        ("inbound webhooks posted / 200 / delivered again", f"{figures['inbound_posted']} / "
         f"{figures['inbound_acked']} / {figures['inbound_redelivered']}", "all 200 in the end"),
        ("status webhooks posted / 200", f"{figures['statuses_posted']} / {figures['statuses_acked']}", ""),
        ("200s not stored / stored twice", f"{figures['webhooks_not_stored']} / {figures['webhooks_stored_twice']}",
         "0 / 0"),
        ("events by result", json.dumps(figures["events_by_result"]), "all processed"),
        ("inbound wamids applied once", f"{figures['inbound_applied_once']}/{figures['inbound_acked']}", "all"),
        ("statuses (200) not applied", figures["statuses_not_applied"], "0"),
        ("API sends posted / 202", f"{figures['api_posted']} / {figures['api_accepted']}", ""),
        ("API answers", json.dumps(figures["api_answers"]), ""),
        ("accepted sends by final status", json.dumps(figures["api_final"]), "no queued"),
        ("all outbound by status", json.dumps(figures["outbound_by_status"]), "no queued"),
        ("fake: sends / messages accepted", f"{figures['fake_sends']} / {figures['fake_accepted_messages']}", ""),
        ("fake: messages accepted twice", figures["duplicates"], "0 (the in-flight rule allows none)"),
        ("left `sending` (in-flight rule) / reached fake", f"{figures['in_flight_sending']} / "
         f"{figures['in_flight_reached_fake']}", "swept to failed 10 min after claim"),
    ]
    for label, value, target in rows:
        print(f"  {label:48} {value!s:>28}   {target}")
    for row in figures["in_flight_rows"][:5]:
        print(f"    message {row['id']} sending (reached fake: {row['reached_fake']}): "
              f"the sweep fails it after {row['failed_by_sweep_after']}")
    verdict(broken)


if __name__ == "__main__":
    main()

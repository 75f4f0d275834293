"""Meta faults (issue 8): the fake Graph API answers with lost answers, 5xx, 130429, 131056 and a
refused token for a while, then recovers; messages queued through the API meanwhile must all be
sent, once each, and the throughput cap must hold throughout.

    .venv/bin/python bench/meta_faults.py [--cap 20] [--phase 10] [--rate 15] [--recover 480]

gunicorn (2 sync workers), 2 `db_worker` processes, the fake Graph API in its own process, a fresh
PostgreSQL database. API sends (each to its own recipient) arrive at `--rate` a second during the
whole fault schedule; each fault lasts `--phase` seconds, with a normal phase before and between:

    normal, drop (the request reaches Meta, the answer is lost: a timeout for the sender), normal,
    503 (a proxy's raw HTML), 130429 (throughput limit), 131056 (pair rate limit), normal,
    190 (token refused; `--token-seconds`, last, see below), recovered.

Meta's status webhooks are played too: a "delivered" webhook, carrying the message's
`biz_opaque_callback_data`, for every send the fake accepted, also those whose answer was lost
(that is how such a message gets its wamid: chatbot/outbox.py, in-flight rule).

A refused token pauses the number's sending for TOKEN_PAUSE (5 min, chatbot/outbox.py) unless a
new token comes: the product reads no setting for it, so with the token fault the run waits those
5 minutes; `--token-seconds 0` leaves the token fault out.

Checks: every accepted send (202) ends sent/delivered/read (none lost, none failed, none left
queued or sending); the fake accepted no message twice (the in-flight rule allows no second copy);
the fake's busiest second (every send request counted, failed or not) is at most the cap.
Prints a table, saves bench/results/meta_faults.json, exits 1 on a broken promise.
"""

import argparse
import json
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    GRAPH_TOKEN,
    Traffic,
    Workers,
    api_token,
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
    stop,
    verdict,
)
from bench.crash import StatusFeed, api_request, seed_recipients, wait_for_workers  # noqa: E402

DATABASE = "hoztech_bench_meta_faults"
MANY = 1_000_000  # "every matching request" for the length of a phase
FAULTS = {
    "drop": ("drop_next", {"times": MANY, "path_contains": "/messages"}),
    "503": ("fail_next", {"raw_status": 503, "body": "<html>Service Unavailable</html>", "times": MANY}),
    "130429": ("fail_next", {"code": 130429, "http_status": 400, "times": MANY}),
    "131056": ("fail_next", {"code": 131056, "http_status": 400, "times": MANY}),
    "190": ("fail_next", {"code": 190, "http_status": 401, "times": MANY}),
}


def schedule(phase, token_seconds):
    plan = [("normal", phase), ("drop", phase), ("normal", phase), ("503", phase), ("130429", phase),
            ("131056", phase), ("normal", phase)]
    if token_seconds:
        plan.append(("190", token_seconds))
    return plan


def run_faults(url, plan, log):
    """Script the fake through `plan`; `log` gets (phase, start, end) in time.monotonic()."""
    for name, seconds in plan:
        started = time.monotonic()
        if name != "normal":
            method, options = FAULTS[name]
            fake_call(url, f"/_fake/{method}", options)
        time.sleep(seconds)
        fake_call(url, "/_fake/clear_scripts", {})
        log.append((name, started, time.monotonic()))


def phase_of(moment, log):
    for name, start, end in log:
        if start <= moment < end:
            return name
    return "recovered"


def outcome(accepted):
    from django.db.models import Count

    from chatbot.models import Message

    return dict(Message.objects.filter(pk__in=accepted).values_list("status").annotate(n=Count("pk")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, default=20, help="WHATSAPP_MESSAGES_PER_SECOND")
    parser.add_argument("--rate", type=float, default=15, help="API sends per second during the faults")
    parser.add_argument("--phase", type=float, default=10, help="seconds of each phase")
    parser.add_argument("--token-seconds", type=float, default=5, help="seconds of token errors (0: none)")
    parser.add_argument("--recover", type=int, default=480, help="seconds allowed for everything to be sent")
    options = parser.parse_args()
    plan = schedule(options.phase, options.token_seconds)
    seconds = sum(length for _name, length in plan)

    database_url = fresh_database(DATABASE)
    graph, url = fake_graph_process()
    workers = None
    try:
        env = server_env(database_url, WHATSAPP_GRAPH_URL=url, WHATSAPP_ACCESS_TOKEN=GRAPH_TOKEN, LOG_LEVEL="WARNING",
                         WHATSAPP_MARK_READ="false", WHATSAPP_MESSAGES_PER_SECOND=options.cap,
                         API_REQUESTS_PER_MINUTE=1_000_000)
        manage(env, "migrate", "--noinput")
        setup_django(env)
        seed_recipients(int(options.rate * seconds) + 10, "5542")
        token = api_token(env)
        port = free_port()
        traffic = Traffic(threads=16)
        log = []
        with ExitStack() as stack:
            stack.enter_context(gunicorn("hoztech.wsgi", port, env, 2))
            workers = Workers(env, 2, prefix="faults")
            wait_for_workers(2)
            feed = StatusFeed(traffic, url, [port])
            feed.start()
            load = threading.Thread(target=traffic.paced, args=(lambda i: api_request(port, i, token, "5542"),
                                                                options.rate, seconds))
            started = time.monotonic()
            load.start()
            run_faults(url, plan, log)
            load.join()
            time.sleep(2)
            api = [r for r in traffic.done if r["kind"] == "api"]
            accepted = [json.loads(r["answer"])["id"] for r in api if r.get("status") == 202]
            deadline = time.monotonic() + options.recover
            while time.monotonic() < deadline:
                states = outcome(accepted)
                if not (states.get("queued") or states.get("sending")):
                    break
                time.sleep(2)
            recovered_s = round(time.monotonic() - log[-1][2], 1)
            time.sleep(2)  # the last statuses
            feed.stopping.set()
            feed.join()
            feed.poll()
            traffic.redeliver(feed.requests, lambda status: status == 200, 20)
            time.sleep(2)
            states = outcome(accepted)
            sends = fake_call(url, "/_fake/sends")["sends"]
            per_second = fake_call(url, "/_fake/stats")["per_second"]
            traffic.close()
            workers.stop()
            from chatbot.models import Message

            failed = list(Message.objects.filter(pk__in=accepted, status="failed")
                          .values("pk", "error_code", "error_title")[:10])
    finally:
        if workers:
            workers.stop()
        stop(graph)

    broken = []
    answers = Counter(str(r.get("status")) for r in api)
    not_sent = {status: n for status, n in states.items() if status not in ("sent", "delivered", "read")}
    if not_sent:
        broken.append(f"accepted sends not sent in the end: {not_sent}")
    if len(accepted) < len(api):
        broken.append(f"API answers other than 202: {dict(answers)}")
    accepted_by_fake = Counter(callback for callback, _to, _status, wamid, _dropped, _t in sends if wamid)
    duplicates = {callback: n for callback, n in accepted_by_fake.items() if n > 1}
    if duplicates:
        broken.append(f"{len(duplicates)} messages accepted twice or more by the fake Graph API")
    busiest = max(per_second.values(), default=0)
    over = [{"second_s": round(int(second) - started, 1), "sends": count, "phase": phase_of(int(second) + 0.5, log)}
            for second, count in sorted(per_second.items(), key=lambda item: int(item[0])) if count > options.cap]
    if busiest > options.cap:
        broken.append(f"cap exceeded in {len(over)} seconds: " + ", ".join(
            f"{item['sends']} sends in second {item['second_s']} s ({item['phase']})" for item in over[:5])
            + f"; cap {options.cap}")
    by_phase = {}
    for _callback, _to, status, _wamid, dropped, moment in sends:
        key = "dropped" if dropped else str(status)
        by_phase.setdefault(phase_of(moment, log), Counter())[key] += 1
    last_send = max((moment for *_rest, moment in sends), default=started)

    result = {
        "machine": machine(), "cap": options.cap, "rate": options.rate, "plan": plan,
        "api_posted": len(api), "api_accepted": len(accepted), "api_answers": dict(answers),
        "final_status": states, "failed_examples": failed,
        "fake_send_requests": len(sends), "fake_accepted_messages": len(accepted_by_fake),
        "duplicates": len(duplicates), "busiest_second": busiest, "over_cap_seconds": over,
        "per_second": {str(round(int(second) - started)): count
                       for second, count in sorted(per_second.items(), key=lambda item: int(item[0]))},
        "sends_by_phase": {name: dict(counts) for name, counts in by_phase.items()},
        "recovered_s_after_faults": recovered_s,
        "last_send_s_after_faults": round(last_send - log[-1][2], 1),
        "statuses_posted": len(feed.requests), "broken": broken,
    }
    save("meta_faults", result)
    print(f"Machine: {result['machine']}; gunicorn 2 workers, 2 db_worker processes, fake Graph API; PostgreSQL; "
          f"cap {options.cap}/s")
    print("schedule: " + ", ".join(f"{name} {length:g} s" for name, length in plan))
    print("fake's answers by phase: " + "; ".join(f"{name}: {json.dumps(counts)}"
                                                   for name, counts in result["sends_by_phase"].items()))
    rows = [
        ("API sends posted / 202", f"{len(api)} / {len(accepted)}", "all 202"),
        ("final status of the accepted", json.dumps(states), "all sent/delivered/read"),
        ("fake: send requests / messages accepted", f"{len(sends)} / {len(accepted_by_fake)}", ""),
        ("fake: messages accepted twice", len(duplicates), "0"),
        ("busiest second at the fake", busiest, f"<= {options.cap}"),
        ("all sent, s after the faults ended", recovered_s, ""),
    ]
    for label, value, target in rows:
        print(f"  {label:42} {value!s:>40}   {target}")
    verdict(broken, [f"failed: {row}" for row in failed])


if __name__ == "__main__":
    main()

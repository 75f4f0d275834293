"""Database fault (issue 8): PostgreSQL restarted once during webhook load; webhooks that arrive
while it is down must get a non-200 (so Meta delivers them again), never a 200 for a body that was
not stored; afterwards everything resumes by itself and /chatbot/health/ goes from "down" back to
"ok" (or "degraded").

    .venv/bin/python bench/db_fault.py [--seconds 30] [--rate 40] [--restart-at 10]

CAUTION: this restarts the machine's PostgreSQL cluster (`pg_ctlcluster --skip-systemctl-redirect
<version> main restart`, the version read from /etc/postgresql), which other people's test runs on
this machine share: their connections break too. So the script does it exactly ONCE, with the
default (fast) shutdown, which keeps the outage to a second or two; do not loop it.

gunicorn (2 sync workers) takes signed inbound webhooks (each from a new customer) at `--rate` a
second, open loop; 2 `db_worker` processes apply them and the bot answers in sandbox mode (no
Meta). A poller GETs /chatbot/health/ every 0.1 s. After the load, webhooks that got no 200 are
delivered again, as Meta would, and the script waits for the workers to apply everything.

Checks: no webhook answered 200 is missing from the stored events; some webhooks got a non-200
during the outage (else the outage was not observed); once delivered again every webhook is
stored and applied (one Message per wamid, no event pending or failed) without any manual step;
the health endpoint said "down" (503) during the outage and "ok"/"degraded" after it. Note that
each gunicorn worker caches the health report for 5 s (chatbot/health.py), so an outage shorter
than that may not show as "down"; the script reports what it saw. Saves bench/results/db_fault.json,
exits 1 on a broken promise.
"""

import argparse
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Traffic,
    Workers,
    free_port,
    fresh_database,
    get_json,
    gunicorn,
    machine,
    manage,
    save,
    server_env,
    setup_django,
    verdict,
    wait_until,
)
from bench.crash import inbound_request, wait_for_workers  # noqa: E402

DATABASE = "hoztech_bench_db_fault"


def pg_version():
    versions = sorted((entry.name for entry in Path("/etc/postgresql").iterdir() if entry.name.isdigit()), key=int)
    if not versions:
        sys.exit("no PostgreSQL cluster under /etc/postgresql")
    return versions[-1]


def restart_postgresql(version):
    """One restart of the shared cluster; returns (seconds it took, output)."""
    started = time.monotonic()
    done = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                          capture_output=True, text=True, timeout=120)
    return time.monotonic() - started, (done.stdout + done.stderr).strip(), done.returncode


class HealthPoller(threading.Thread):
    def __init__(self, port):
        super().__init__(name="health", daemon=True)
        self.port, self.seen = port, []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.wait(0.1):
            status, document = get_json(self.port, "/chatbot/health/", timeout=3)
            state = document.get("status") if isinstance(document, dict) else None
            self.seen.append((time.monotonic(), status, state))


def spans(samples):
    """[(state, from, to)] runs of the same health answer."""
    runs = []
    for moment, status, state in samples:
        label = f"{state or 'no answer'} ({status})"
        if runs and runs[-1][0] == label:
            runs[-1][2] = moment
        else:
            runs.append([label, moment, moment])
    return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rate", type=float, default=40, help="webhooks per second")
    parser.add_argument("--restart-at", type=float, default=10, help="seconds into the load")
    parser.add_argument("--settle", type=int, default=90)
    options = parser.parse_args()
    version = pg_version()
    run_id = time.time_ns()

    database_url = fresh_database(DATABASE)
    env = server_env(database_url, LOG_LEVEL="WARNING", WHATSAPP_MARK_READ="false")
    manage(env, "migrate", "--noinput")
    setup_django(env)
    from django.db import connection
    from django.db.models import Count

    from chatbot.models import Message, WebhookEvent

    port = free_port()
    traffic = Traffic(threads=32, timeout=10)
    workers = None
    with ExitStack() as stack:
        stack.enter_context(gunicorn("hoztech.wsgi", port, env, 2))
        workers = Workers(env, 2, prefix="dbfault")
        stack.callback(workers.stop)
        wait_for_workers(2)
        poller = HealthPoller(port)
        poller.start()
        load = threading.Thread(target=traffic.paced, args=(lambda i: inbound_request(port, i, run_id),
                                                            options.rate, options.seconds))
        started = time.monotonic()
        load.start()
        time.sleep(options.restart_at)
        connection.close()
        restart_started = time.monotonic()
        restart_s, restart_output, restart_code = restart_postgresql(version)
        restart_ended = time.monotonic()
        load.join()
        time.sleep(3)
        # django-tasks-db's worker loop re-raises a lost connection, which ends the process (and
        # its inbox and outbox threads): record which workers were still running.
        worker_exits = [proc.poll() for proc in workers.procs]
        poller.stopping.set()
        poller.join()
        webhooks = list(traffic.done)
        first_try = Counter(str(r.get("status")) for r in webhooks)
        refused = [r for r in webhooks if r.get("status") != 200]
        connection.close()
        # Before any redelivery: did a 200 ever go out for a body that is not stored?
        stored = Counter(WebhookEvent.objects.values_list("body", flat=True).iterator())
        acked_unstored = [r["key"] for r in webhooks if r.get("status") == 200 and not stored[r["body"].decode()]]
        redelivered = traffic.redeliver(webhooks, lambda status: status == 200, 60)
        settled = wait_until(lambda: not WebhookEvent.objects.filter(result="pending").exists(), options.settle)
        after_s = round(time.monotonic() - restart_ended, 1)
        health_after = get_json(port, "/chatbot/health/")
        traffic.close()
        wamids = [r["key"] for r in webhooks if r.get("status") == 200]
        per_wamid = Counter(Message.objects.filter(wamid__in=wamids).values_list("wamid", flat=True))
        results = dict(WebhookEvent.objects.values_list("result").annotate(n=Count("pk")))

    samples = poller.seen
    during = [s for s in samples if restart_started <= s[0] <= restart_ended + 6]
    after = [s for s in samples if s[0] > restart_ended + 6]
    down_seen = any(state == "down" or status in (None, 503) for _m, status, state in during)
    broken = []
    if any(code is not None for code in worker_exits):
        broken.append(f"db_worker processes ended after the restart (exit codes {worker_exits}): nothing applies "
                      "or sends until a process manager restarts them")
    if restart_code != 0:
        broken.append(f"pg_ctlcluster failed ({restart_code}): {restart_output}")
    if acked_unstored:
        broken.append(f"{len(acked_unstored)} webhooks answered 200 but not stored")
    if not refused:
        broken.append("no webhook got a non-200: the outage was not observed by the load")
    not_200 = [r["key"] for r in webhooks if r.get("status") != 200]
    if not_200:
        broken.append(f"{len(not_200)} webhooks still not answered 200 60 s after the restart")
    once = sum(1 for wamid in wamids if per_wamid[wamid] == 1)
    if once != len(wamids):
        broken.append(f"{len(wamids) - once} acked wamids not applied exactly once")
    if not settled or results.get("pending") or results.get("failed"):
        broken.append(f"events not all applied: {results}")
    if not down_seen:
        broken.append("/chatbot/health/ never said down (or 503) during the outage")
    final_state = health_after[1].get("status") if isinstance(health_after[1], dict) else None
    if final_state not in ("ok", "degraded"):
        broken.append(f"/chatbot/health/ after the outage: {health_after[0]} {final_state}")
    if after and any(state not in ("ok", "degraded") for _m, _s, state in after[-10:]):
        broken.append("/chatbot/health/ not ok/degraded in its last answers")

    timeline = [{"health": label, "from_s": round(start - restart_started, 1), "to_s": round(end - restart_started, 1)}
                for label, start, end in spans(samples)]
    result = {
        "machine": machine(), "rate": options.rate, "seconds": options.seconds, "postgresql": version,
        "restart_s": round(restart_s, 2), "restart_at_s": round(restart_started - started, 1),
        "webhooks": len(webhooks), "first_answers": dict(first_try), "non_200": len(refused),
        "acked_but_not_stored": len(acked_unstored), "redelivered": redelivered,
        "applied_once": once, "acked_in_the_end": len(wamids), "events_by_result": results,
        "all_applied_s_after_restart": after_s, "health_down_seen": down_seen, "health_after": final_state,
        "health_timeline": timeline, "db_worker_exit_codes": worker_exits, "broken": broken,
    }
    save("db_fault", result)
    print(f"Machine: {result['machine']}; gunicorn 2 workers, 2 db_worker processes (sandbox); PostgreSQL {version}")
    print(f"{len(webhooks)} webhooks at {options.rate:g}/s; PostgreSQL restarted once at {result['restart_at_s']} s "
          f"(restart took {result['restart_s']} s)")
    rows = [
        ("first answers", dict(first_try), "non-200 during the outage"),
        ("answered 200 but not stored", len(acked_unstored), "0"),
        ("delivered again (as Meta) until 200", redelivered, ""),
        ("acked wamids applied exactly once", f"{once}/{len(wamids)}", "all"),
        ("events by result", results, "all processed"),
        ("everything applied, s after the restart", after_s, "no manual step"),
        ("health during / after", f"{'down seen' if down_seen else 'down NOT seen'} / {final_state}",
         "down / ok or degraded"),
    ]
    for label, value, target in rows:
        print(f"  {label:42} {value!s:>34}   {target}")
    print("  health timeline (s from the restart): " + ", ".join(
        f"{item['health']} {item['from_s']}..{item['to_s']}" for item in timeline))
    verdict(broken)


if __name__ == "__main__":
    main()

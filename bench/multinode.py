"""Multi-node (issue 8): two gunicorn instances on two ports and two `db_worker` processes on one
PostgreSQL, the load split across both, as two machines behind a load balancer would share it.

    .venv/bin/python bench/multinode.py [--seconds 30] [--cap 40] [--inbound-rate 10] [--api-rate 30]

Inbound webhooks (each from a new customer: the bot's first turn sends two messages) alternate
between the two ports, API sends (POST /chatbot/send/) too, and Meta's "delivered" status webhooks
for the fake Graph API's accepted sends too. The messages asked for (bot replies plus API sends)
exceed the cap, so the cap binds: the two workers must share it, not each take it whole.

Checks (the crash test's, bench/crash.py, without the kills): every webhook answered 200 stored
and applied once (one Message per inbound wamid, statuses applied); every accepted send ends sent
or later; the fake accepted no message twice; and the fake's busiest second is at most the cap
(the throughput cap is global, booked in PostgreSQL). Saves bench/results/multinode.json, exits 1
on a broken promise.
"""

import argparse
import json
import sys
import threading
import time
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
from bench.crash import (  # noqa: E402
    StatusFeed,
    api_request,
    check,
    inbound_request,
    seed_recipients,
    settle,
    wait_for_workers,
)

DATABASE = "hoztech_bench_multinode"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--cap", type=int, default=40, help="WHATSAPP_MESSAGES_PER_SECOND")
    parser.add_argument("--inbound-rate", type=float, default=10, help="new customers' messages per second")
    parser.add_argument("--api-rate", type=float, default=30, help="API sends per second")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers per instance")
    parser.add_argument("--settle", type=int, default=180)
    options = parser.parse_args()
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
        seed_recipients(int(options.api_rate * options.seconds), "5543")
        token = api_token(env)
        ports = [free_port(), free_port()]
        traffic = Traffic(threads=32)
        with ExitStack() as stack:
            for port in ports:
                stack.enter_context(gunicorn("hoztech.wsgi", port, env, options.web_workers))
            workers = Workers(env, 2, prefix="node")
            wait_for_workers(2)
            feed = StatusFeed(traffic, url, ports)
            loads = [
                threading.Thread(target=traffic.paced, args=(lambda i: inbound_request(ports[i % 2], i, run_id),
                                                             options.inbound_rate, options.seconds)),
                threading.Thread(target=traffic.paced, args=(lambda i: api_request(ports[i % 2], i, token, "5543"),
                                                             options.api_rate, options.seconds)),
            ]
            started = time.monotonic()
            for thread in [feed, *loads]:
                thread.start()
            for thread in loads:
                thread.join()
            time.sleep(2)
            feed.stopping.set()
            feed.join()
            settled = settle(feed, traffic, options.settle)
            drained_s = round(time.monotonic() - started, 1)
            inbound = [r for r in traffic.done if r["kind"] == "inbound"]
            api = [r for r in traffic.done if r["kind"] == "api"]
            sends = fake_call(url, "/_fake/sends")["sends"]
            per_second = {int(k): v for k, v in fake_call(url, "/_fake/stats")["per_second"].items()}
            figures, broken = check(inbound, api, feed.requests, sends)
            traffic.close()
            workers.stop()
    finally:
        if workers:
            workers.stop()
        stop(graph)

    seconds = sorted(per_second.items())
    full = [count for _second, count in seconds[1:-1]] or [count for _second, count in seconds]
    busiest = max(full + [count for _second, count in seconds], default=0)
    saturated = [count for count in full if count >= 0.5 * options.cap]
    rate = round(sum(saturated) / len(saturated), 1) if saturated else 0.0
    by_port = {str(port): sum(1 for r in traffic.done if r["port"] == port and r.get("status") in (200, 202))
               for port in ports}
    if busiest > options.cap:
        broken.append(f"cap exceeded: {busiest} sends in one second at the fake, cap {options.cap}")
    if settled is None:
        broken.append(f"the queues did not empty within {options.settle} s")
    result = {
        "machine": machine(), "seconds": options.seconds, "cap": options.cap,
        "inbound_rate": options.inbound_rate, "api_rate": options.api_rate, "answered_by_port": by_port,
        "busiest_second": busiest, "rate_while_busy": rate, "drained_s": drained_s, "settled_s": settled,
        **figures, "broken": broken,
    }
    save("multinode", result)
    print(f"Machine: {result['machine']}; 2 gunicorn instances x {options.web_workers} workers on ports {ports}, "
          f"2 db_worker processes, fake Graph API; one PostgreSQL; cap {options.cap}/s")
    rows = [
        ("answers 200/202 by port", json.dumps(by_port), "both ports used"),
        ("inbound webhooks posted / 200", f"{figures['inbound_posted']} / {figures['inbound_acked']}", ""),
        ("inbound wamids applied once", f"{figures['inbound_applied_once']}/{figures['inbound_acked']}", "all"),
        ("events by result", json.dumps(figures["events_by_result"]), "all processed"),
        ("statuses posted / 200 / not applied", f"{figures['statuses_posted']} / {figures['statuses_acked']} / "
         f"{figures['statuses_not_applied']}", "all applied"),
        ("API sends posted / 202", f"{figures['api_posted']} / {figures['api_accepted']}", ""),
        ("all outbound by status", json.dumps(figures["outbound_by_status"]), "no queued"),
        ("fake: messages accepted / twice", f"{figures['fake_accepted_messages']} / {figures['duplicates']}",
         "0 twice"),
        ("fake: busiest second", busiest, f"<= {options.cap}"),
        ("fake: rate while the cap binds (messages/s)", rate, f"~{options.cap}"),
        ("all done, s from the start", drained_s, ""),
    ]
    for label, value, target in rows:
        print(f"  {label:44} {value!s:>34}   {target}")
    verdict(broken)


if __name__ == "__main__":
    main()

"""Reply latency benchmark (issue 5): from a signed inbound webhook to the bot's first reply
arriving at the fake Graph API, at a sustained inbound rate, on PostgreSQL.

    .venv/bin/python bench/reply_latency.py [--rate 50] [--seconds 20] [--workers 2]

Each message comes from a new customer, so every one gets the full first turn (new session,
greeting and menu). gunicorn (4 sync workers) takes the webhooks; `db_worker` processes apply
them, run the bot and send. Latency runs from the scheduled send time of the webhook (open loop:
a slow server cannot hide its queue) to the first reply's arrival at the fake, both read from
time.monotonic(), which all processes on the machine share.
"""

import argparse
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    APP_SECRET,
    PYTHON,
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
)
from bench.cpu import Meter, describe  # noqa: E402
from bench.outbound import TOKEN, fake, fake_graph  # noqa: E402

TARGET_P50_MS, TARGET_P99_MS = 150, 500
PNID = "106540352242922"
WARM_UP = 20


def webhooks(count, prefix="5521"):
    import hashlib
    import hmac

    from chatbot.whatsapp.webhook import customer_message

    requests = []
    for index in range(count):
        body = customer_message(phone_number_id=PNID, wa_id=f"{prefix}{index:09d}", name=f"Cliente {index}",
                                wamid=f"wamid.LATENCY{time.time_ns()}{index}", text="Olá, bom dia!")
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        requests.append(({"Content-Type": "application/json", "X-Hub-Signature-256": signature}, body))
    return requests


def wait_for_workers(count, timeout=60):
    """Until every worker's inbox has beaten (it does on its first look at the queue)."""
    from chatbot.models import WorkerBeat

    deadline = time.monotonic() + timeout
    while WorkerBeat.objects.count() < count and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # and their outbox and task threads have started too


def by_second(due, arrivals, rate):
    seconds = {}
    for index, scheduled in due.items():
        arrival = arrivals.get(f"+5521{index:09d}")
        if arrival is not None:
            seconds.setdefault(index // rate, []).append((arrival - scheduled) * 1000)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cap", type=int, default=1000,
                        help="WHATSAPP_MESSAGES_PER_SECOND; a first turn sends two messages, so 50 turns/s "
                             "need 100/s, more than the default tier's 80")
    options = parser.parse_args()

    database_url = fresh_database("hoztech_bench_latency")
    graph, url = fake_graph()
    try:
        env = server_env(database_url, WHATSAPP_GRAPH_URL=url, WHATSAPP_ACCESS_TOKEN=TOKEN, LOG_LEVEL="WARNING",
                         WHATSAPP_MARK_READ="false", WHATSAPP_MESSAGES_PER_SECOND=options.cap)
        manage(env, "migrate", "--noinput")
        setup_django(env)
        from chatbot.models import Department

        for position, name in enumerate(["Vendas", "Suporte"]):
            Department.objects.create(name=name, position=position)
        count = options.rate * options.seconds
        requests = webhooks(count)
        port = free_port()
        # As the Procfile runs it.
        worker = [PYTHON, "manage.py", "db_worker", "--no-reload", "--queue-name", "*", "--interval", "0.2"]
        due = {}
        with ExitStack() as stack:
            web = stack.enter_context(gunicorn("hoztech.wsgi", port, env, 4))
            workers = [stack.enter_context(process(worker + ["--worker-id", f"latency{index}"], env))
                       for index in range(options.workers)]
            wait_for_workers(options.workers)
            # Warm-up, not measured: each process's first requests and turns import code, open
            # connections and read the configuration, which a server running for days did long ago.
            open_loop(port, "/chatbot/webhook/", webhooks(WARM_UP, prefix="5531"), 10)
            warm_until = time.monotonic() + 30
            while len(fake(url, "/_fake/stats")["first_send_to"]) < WARM_UP and time.monotonic() < warm_until:
                time.sleep(0.2)
            meter = Meter({"db_worker": [proc.pid for proc in workers], "gunicorn": [web.pid],
                           "fake_graph": [graph.pid]}, "hoztech_bench_latency").start()
            _, failures = open_loop(port, "/chatbot/webhook/", requests, options.rate, due_times=due)
            deadline = time.monotonic() + 30
            while len(fake(url, "/_fake/stats")["first_send_to"]) < WARM_UP + count and time.monotonic() < deadline:
                time.sleep(0.5)
            cpu = meter.stop()
        arrivals = fake(url, "/_fake/stats")["first_send_to"]
    finally:
        graph.terminate()
        graph.wait(timeout=10)

    latencies = [(arrivals[f"+5521{index:09d}"] - due[index]) * 1000 for index in range(count)
                 if f"+5521{index:09d}" in arrivals]
    result = {
        "machine": machine(), "rate": options.rate, "seconds": options.seconds, "workers": options.workers,
        "cap": options.cap,
        "webhooks": count, "non_200": failures, "answered": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 1), "p90_ms": round(percentile(latencies, 0.90), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "targets": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS},
        "cpu_seconds": cpu,
        # Per second of sending: p50 and max of the messages sent in it (does the queue grow?).
        "timeline": [
            [second, round(percentile(values, 0.5)), round(max(values))]
            for second, values in sorted(by_second(due, arrivals, options.rate).items())
        ],
    }
    save("reply_latency", result)
    print(f"Machine: {result['machine']}; gunicorn 4 workers, {options.workers} db_worker processes; PostgreSQL; "
          f"cap {options.cap} messages/s")
    print(f"{options.rate} inbound messages/s for {options.seconds} s: {len(latencies)}/{count} answered, "
          f"{failures} webhooks not acknowledged")
    print(f"reply latency p50 {result['p50_ms']} ms (target <= {TARGET_P50_MS}), "
          f"p99 {result['p99_ms']} ms (target <= {TARGET_P99_MS}), max {result['max_ms']} ms")
    print(describe(cpu, count))
    print("per second sent: p50/max ms " + " ".join(f"{p50}/{top}" for _second, p50, top in result["timeline"]))
    if len(latencies) < count:
        sys.exit("FAIL: some messages got no reply")


if __name__ == "__main__":
    main()

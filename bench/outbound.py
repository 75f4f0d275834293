"""Outbound benchmark (issue 4): messages/s that `db_worker` processes send to the local fake Graph
API, against the configured cap, on PostgreSQL.

    .venv/bin/python bench/outbound.py [--seconds 10] [--workers 2]

Two runs: at the default cap of 80 messages/s (achieved rate, and the busiest second, which must
not exceed the cap), and uncapped (cap 100,000: the pipeline's own ceiling). Messages go to
distinct recipients, as a bulk notification does, so the pair rate limit does not apply.
"""

import argparse
import json
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.request import Request, urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    PYTHON,
    ROOT,
    fresh_database,
    machine,
    manage,
    process,
    save,
    server_env,
    setup_django,
)
from bench.cpu import Meter, describe  # noqa: E402

TOKEN = "bench-token"
DATABASE = "hoztech_bench_outbound"
UNCAPPED = 100_000


def fake_graph():
    """Start the fake Graph API in its own process; returns (process, URL)."""
    proc = subprocess.Popen(
        [PYTHON, "-m", "chatbot.tests.fake_graph", "--port", "0", "--token", TOKEN],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return proc, proc.stdout.readline().strip()


def fake(url, path, method="GET"):
    with urlopen(Request(url + path, method=method, data=b"" if method == "POST" else None), timeout=10) as answer:
        return json.loads(answer.read() or b"{}")


def queue_messages(count, offset):
    from django.utils import timezone

    from chatbot.models import Contact, Message, PhoneNumber

    number = PhoneNumber.objects.default()
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        [Contact(wa_id=f"55{offset + index:011d}", last_inbound_at=now) for index in range(count)], batch_size=2000
    )
    Message.objects.bulk_create(
        [
            Message(
                phone_number=number,
                contact=contact,
                direction="out",
                source="api",
                type="text",
                text=f"Seu pedido {index} saiu para entrega",
                payload={"body": f"Seu pedido {index} saiu para entrega"},
                status="queued",
            )
            for index, contact in enumerate(contacts)
        ],
        batch_size=2000,
    )


def run(env, url, cap, count, workers, offset, graph_pid):
    from django.db import transaction

    fake(url, "/_fake/reset", "POST")
    env = {**env, "WHATSAPP_MESSAGES_PER_SECOND": str(cap)}
    args = [PYTHON, "manage.py", "db_worker", "--no-reload", "--queue-name", "*", "--interval", "0.2"]
    with ExitStack() as stack:
        procs = [stack.enter_context(process(args + ["--worker-id", f"bench{index}"], env)) for index in range(workers)]
        time.sleep(3)  # workers up: their start-up is not part of the figures
        with transaction.atomic():  # the whole batch appears to the workers at once
            queue_messages(count, offset)
        meter = Meter({"db_worker": [proc.pid for proc in procs], "fake_graph": [graph_pid]}, DATABASE).start()
        started = time.monotonic()
        deadline = started + max(60, 3 * count / min(cap, 500))
        while fake(url, "/_fake/stats")["messages"] < count and time.monotonic() < deadline:
            time.sleep(0.2)
        cpu = meter.stop()
    stats = fake(url, "/_fake/stats")
    seconds = sorted((int(second), sends) for second, sends in stats["per_second"].items())
    # The first and last seconds are partial: the rate is that of the full seconds between them.
    full = [sends for _second, sends in seconds[1:-1]] or [sends for _second, sends in seconds]
    return {
        "cap": cap,
        "queued": count,
        "sent": stats["messages"],
        "unique_wamids": len(set(stats["wamids"])),
        "rate": round(sum(full) / len(full), 1),
        "busiest_second": max(full),
        "seconds": len(seconds),
        "wall_s": round(time.monotonic() - started, 1),
        "cpu_seconds": cpu,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--uncapped-messages", type=int, default=10_000)
    options = parser.parse_args()

    database_url = fresh_database(DATABASE)
    graph, url = fake_graph()
    try:
        env = server_env(database_url, WHATSAPP_GRAPH_URL=url, WHATSAPP_ACCESS_TOKEN=TOKEN, LOG_LEVEL="WARNING")
        manage(env, "migrate", "--noinput")
        setup_django(env)
        capped = run(env, url, 80, 80 * options.seconds, options.workers, offset=0, graph_pid=graph.pid)
        uncapped = run(env, url, UNCAPPED, options.uncapped_messages, options.workers, offset=10**9,
                       graph_pid=graph.pid)
    finally:
        graph.terminate()
        graph.wait(timeout=10)

    result = {"machine": machine(), "workers": options.workers, "capped": capped, "uncapped": uncapped}
    save("outbound", result)
    print(f"Machine: {result['machine']}; {options.workers} db_worker processes; PostgreSQL; fake Graph API process")
    print(
        f"cap 80/s:   {capped['rate']:7.1f} messages/s ({capped['rate'] / 80:.0%} of the cap; target >= 95%), "
        f"busiest second {capped['busiest_second']} (target <= 80); sent {capped['sent']}/{capped['queued']}, "
        f"distinct wamids {capped['unique_wamids']}"
    )
    print(
        f"uncapped:   {uncapped['rate']:7.1f} messages/s (target >= 1000); "
        f"sent {uncapped['sent']}/{uncapped['queued']} "
        f"in {uncapped['wall_s']} s"
    )
    print("uncapped:   " + describe(uncapped["cpu_seconds"], uncapped["sent"]))
    if capped["busiest_second"] > 80 or capped["sent"] != capped["queued"]:
        sys.exit("FAIL: the cap was exceeded or messages were not all sent")


if __name__ == "__main__":
    main()

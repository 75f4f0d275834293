"""Event webhooks benchmark (issue 17), on PostgreSQL with the product's defaults.

    .venv/bin/python bench/events.py [--rates 250 500 1000 1500] [--seconds 15] [--workers 2]
                                     [--webhook-seconds 10] [--rounds 2] [--skip-delivery] [--skip-webhooks]
                                     [--profile]

1. **Delivery.** A generator process records `message.delivered` events (a message object each,
   as the statuses record them) with `events.emit_many`, a batch every 20 ms, at each --rates
   step for --seconds; two `db_worker` processes (the Procfile's command, 16 delivery threads
   each) post them to one endpoint, a receiver in its own process (asyncio, HTTP/1.1 kept alive,
   answering 200 at once) on 127.0.0.1. Per step: events/s delivered, the lag from the event's
   `created_at` to its arrival (p50/p99/max), duplicates, events lost. A step is sustained when
   every event arrived, none lost, and the lag p99 stayed under 1 s (no queue growing). Target:
   1,000 events/s.
2. **Webhook acknowledgement with endpoints.** gunicorn (4 sync workers) takes signed inbound
   messages at full load (wrk, as bench/webhook_load.py) with no endpoint, then with 2 endpoints
   subscribed to every type (every event posted twice), --rounds times each, alternating: first
   gunicorn alone (the request path, which records no event), then with the two workers applying
   the webhooks on the same 2 cores (the bot answers in sandbox mode) and delivering their events
   (message.received, conversation.created, message.sent…) to the receiver. Each run posts
   webhooks never posted before and starts with the queues empty (the backlog of the run before
   deleted: the workers apply fewer webhooks a second than gunicorn acknowledges at full load).
   Target: the same rate with endpoints (ratio ≥ 0.9).
3. **--profile**: the delivery path (claim, post, record) in this process, one thread, under
   cProfile, on a backlog of 5,000 events: where a worker's CPU per event goes.

WEBHOOK_ALLOW_PRIVATE_TARGETS is on (the receiver is on 127.0.0.1); everything else is the
product's default. Every process is started here and stopped by its PID; all traffic is local.
"""

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.request import urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    PYTHON,
    ROOT,
    Workers,
    free_port,
    fresh_database,
    gunicorn,
    machine,
    manage,
    percentile,
    save,
    server_env,
    setup_django,
    stop,
    wait_until,
)
from bench.cpu import Meter, describe  # noqa: E402

DATABASE = "hoztech_bench_events"
TARGET_RATE = 1000
SUSTAINED_P99_MS = 1000
TARGET_ACK_RATIO = 0.9
TICK = 0.02  # the generator records a batch this often
PNID = "106540352242922"


# --- The receiver (its own process: `bench/events.py --receiver`) ---------------------------------


def serve_receiver():
    """Answer every POST 200 at once, keeping when it arrived and its first bytes (the body starts
    with the event's id and created_at); GET /_count and /_arrivals?from=N for the benchmark."""
    arrivals = []
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

    def control(path):
        if path.startswith(b"/_count"):
            return {"count": len(arrivals)}
        start = int(path.split(b"from=")[1]) if b"from=" in path else 0
        found = []
        for at, head in arrivals[start:]:
            match = re.match(rb'\{"id":"(evt_\w+)","type":"[\w.]+","created_at":"([^"]+)"', head)
            found.append([at, match.group(1).decode(), datetime.fromisoformat(match.group(2).decode()).timestamp()]
                         if match else [at, "", at])
        return found

    class Http(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buffer = transport, b""

        def data_received(self, data):
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].lower()
                at = head.find(b"content-length:")
                length = int(head[at + 15:].split(b"\r\n", 1)[0]) if at >= 0 else 0
                if len(self.buffer) < end + 4 + length:
                    return
                body, self.buffer = self.buffer[end + 4:end + 4 + length], self.buffer[end + 4 + length:]
                if head.startswith(b"get "):
                    payload = json.dumps(control(head.split(b" ")[1])).encode()
                    self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                         + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                else:
                    arrivals.append((time.time(), body[:160]))
                    self.transport.write(answer)

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Http, "127.0.0.1", 0, backlog=512)
        print(server.sockets[0].getsockname()[1], flush=True)
        stopping = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        await stopping.wait()
        server.close()

    asyncio.run(main())


def receiver_process():
    proc = subprocess.Popen([PYTHON, "bench/events.py", "--receiver"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    return proc, int(proc.stdout.readline())


def receiver_get(port, path):
    with urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as answer:  # noqa: S310 - our own receiver
        return json.loads(answer.read())


# --- The generator (its own process: `bench/events.py --generate RATE SECONDS`) --------------------


def message_object(index, now):
    """A `message.delivered` event's data, as documents.message_object writes one."""
    moment = now.isoformat()
    return {"id": index, "wamid": f"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjBFQkVOQ0gw{index:012d}", "direction": "out",
            "contact": f"5511{index % 100000:09d}", "phone_number_id": PNID, "type": "text",
            "text": "Olá! Seu pedido #4812 saiu para entrega e chega hoje até as 18h. 🚚",
            "payload": {"body": "Olá! Seu pedido #4812 saiu para entrega e chega hoje até as 18h. 🚚"},
            "reply_to": None, "status": "delivered", "error": None, "timestamp": moment,
            "status_at": {"sent": moment, "delivered": moment, "read": None, "failed": None}}


def generate(rate, seconds):
    """Record `rate` events a second for `seconds`, a batch every TICK, once "go" is read on stdin;
    prints {"emitted", "seconds"}."""
    setup_django(dict(os.environ))
    from django.db import transaction
    from django.utils import timezone

    from chatbot import events

    print("ready", flush=True)
    sys.stdin.readline()
    total, emitted, started = int(rate * seconds), 0, time.monotonic()
    while emitted < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        if due > emitted:
            now = timezone.now()
            with transaction.atomic():
                events.emit_many("message.delivered", [(message_object(index, now), None)
                                                       for index in range(emitted, due)])
            emitted = due
        time.sleep(max(0.0, TICK - (time.monotonic() - started) % TICK))
    print(json.dumps({"emitted": emitted, "seconds": round(time.monotonic() - started, 3)}), flush=True)


# --- 1. Delivery ------------------------------------------------------------------------------------


def step(env, rate, seconds, receiver, port, worker_pids, drain_timeout):
    """One rate: generate, wait for every event to arrive (or drain_timeout), measure."""
    from chatbot.models import EventDelivery

    before = receiver_get(port, "/_count")["count"]
    rows_before = EventDelivery.objects.count()
    generator = subprocess.Popen([PYTHON, "bench/events.py", "--generate", str(rate), str(seconds)], cwd=ROOT,
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True)
    try:
        generator.stdout.readline()  # ready: Django set up
        meter = Meter({"db_worker": worker_pids, "receiver": [receiver.pid], "generator": [generator.pid]},
                      DATABASE).start()
        generator.stdin.write("go\n")
        generator.stdin.flush()
        generated = json.loads(generator.stdout.readline())
        expected = EventDelivery.objects.count() - rows_before
        wait_until(lambda: receiver_get(port, "/_count")["count"] - before >= expected, drain_timeout, 0.25)
        cpu = meter.stop()
    finally:
        stop(generator)
    arrivals = receiver_get(port, f"/_arrivals?from={before}")
    lags = [(at - created) * 1000 for at, _event_id, created in arrivals]
    ids = [event_id for _at, event_id, _created in arrivals]
    span = max(at for at, _i, _c in arrivals) - min(at for at, _i, _c in arrivals) if len(arrivals) > 1 else 0
    distinct = len(set(ids))
    result = {
        "rate": rate, "seconds": seconds, "recorded": expected, "generated_per_s": round(
            generated["emitted"] / generated["seconds"], 1),
        "arrived": len(ids), "distinct": distinct, "duplicates": len(ids) - distinct,
        "lost": expected - distinct, "delivered_per_s": round(distinct / span, 1) if span else 0.0,
        "lag_p50_ms": round(percentile(lags, 0.5), 1), "lag_p99_ms": round(percentile(lags, 0.99), 1),
        "lag_max_ms": round(max(lags, default=float("nan")), 1), "cpu_seconds": cpu,
        "cpu": describe(cpu, max(distinct, 1), "event"),
    }
    result["sustained"] = (result["lost"] == 0 and result["lag_p99_ms"] <= SUSTAINED_P99_MS
                           and result["generated_per_s"] >= 0.95 * rate)
    return result


def delivery(env, options):
    from bench.reply_latency import wait_for_workers
    from chatbot import webhook_endpoints
    from chatbot.models import EventDelivery, WebhookEndpoint

    receiver, port = receiver_process()
    workers = None
    steps = []
    try:
        for endpoint in WebhookEndpoint.objects.listed():  # an earlier part's
            webhook_endpoints.remove(endpoint)
        webhook_endpoints.add(f"http://127.0.0.1:{port}/hooks", description="bench receiver")
        workers = Workers(env, options.workers, prefix="events")
        wait_for_workers(options.workers)
        # Warm-up, not measured: imports, connections, the workers' endpoint caches.
        step(env, 100, 2, receiver, port, workers.pids(), 30)
        for rate in options.rates:
            result = step(env, rate, options.seconds, receiver, port, workers.pids(), options.drain)
            steps.append(result)
            print(f"  {rate:>5}/s: recorded {result['recorded']} at {result['generated_per_s']}/s, delivered "
                  f"{result['delivered_per_s']}/s, lag p50 {result['lag_p50_ms']} ms p99 {result['lag_p99_ms']} "
                  f"ms max {result['lag_max_ms']} ms, duplicates {result['duplicates']}, lost {result['lost']}"
                  f"{'' if result['sustained'] else '  (not sustained)'}", flush=True)
            print(f"         {result['cpu']}", flush=True)
            if not result["sustained"] and rate >= TARGET_RATE:
                break
            wait_until(lambda: not EventDelivery.objects.filter(status="pending").exists(), options.drain)
            time.sleep(2)
        workers.stop()  # what was posted gets recorded: counted after
        workers = None
        statuses = {status: EventDelivery.objects.filter(status=status).count()
                    for status in ("pending", "delivered", "failed")}
    finally:
        if workers:
            workers.stop()
        stop(receiver)
    return {"steps": steps, "statuses": statuses}


# --- 2. Webhook acknowledgement with endpoints -----------------------------------------------------


def bodies(path, count):
    """`count` signed inbound messages with wamids never posted before (a run of wrk starts at
    the file's first line: a file used twice would be duplicates, which the workers skip)."""
    from bench.webhook_load import webhook_body

    with path.open("w") as out:
        for index in range(count):
            signature, body = webhook_body(index)
            out.write(f"{signature}\t{body.decode()}\n")
    return path


def webhooks(env, options):
    """Full-load webhook runs with 0 and 2 endpoints, alternating: first gunicorn alone (the
    request path), then with the workers applying the webhooks and delivering their events."""
    from bench.reply_latency import wait_for_workers
    from bench.webhook_load import run_wrk
    from chatbot import webhook_endpoints
    from chatbot.models import EventDelivery, WebhookEndpoint, WebhookEvent

    receiver, receiver_port = receiver_process()
    workers, runs = None, []
    count = options.webhook_seconds * 2500 + 5000
    try:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            with gunicorn("hoztech.wsgi", port, env, 4) as web:
                run_wrk(port, bodies(Path(tmp) / "warm.txt", 5000), 2)  # warm-up
                for with_workers in (False, True):
                    if with_workers:
                        workers = Workers(env, options.workers, prefix="hooks")
                        wait_for_workers(options.workers)
                    for run in range(options.rounds * 2):
                        endpoints = 2 * (run % 2)
                        for endpoint in WebhookEndpoint.objects.listed():
                            webhook_endpoints.remove(endpoint)
                        for index in range(endpoints):
                            webhook_endpoints.add(f"http://127.0.0.1:{receiver_port}/hooks/{index}")
                        bodies_file = bodies(Path(tmp) / f"run{run}.txt", count)
                        # Each run starts with the queues empty: the backlog of the run before
                        # (the workers apply fewer webhooks a second than gunicorn acknowledges)
                        # is not part of what is measured.
                        WebhookEvent.objects.filter(result="pending").delete()
                        EventDelivery.objects.filter(status="pending").delete()
                        time.sleep(2)  # and every process's endpoint cache (1 s) has seen the change
                        arrived = receiver_get(receiver_port, "/_count")["count"]
                        applied = WebhookEvent.objects.exclude(result="pending").count()
                        recorded = EventDelivery.objects.count()
                        meter = Meter({"gunicorn": [web.pid], "db_worker": workers.pids() if workers else [],
                                       "receiver": [receiver.pid]}, DATABASE).start()
                        result = run_wrk(port, bodies_file, options.webhook_seconds)
                        result["cpu_seconds"] = meter.stop()
                        result.update(endpoints=endpoints, workers=with_workers,
                                      webhooks_applied=WebhookEvent.objects.exclude(result="pending").count() - applied,
                                      deliveries_recorded=EventDelivery.objects.count() - recorded,
                                      events_arrived=receiver_get(receiver_port, "/_count")["count"] - arrived)
                        runs.append(result)
                        print(f"  {'with' if with_workers else 'without'} workers, {endpoints} endpoints: "
                              f"{result['rate']:.0f} acked/s, p50 {result.get('p50_ms')} ms, p99 {result.get('p99_ms')}"
                              f" ms, non-200 {result['non_200']}; meanwhile {result['webhooks_applied']} webhooks "
                              f"applied, {result['deliveries_recorded']} deliveries recorded, "
                              f"{result['events_arrived']} delivered", flush=True)
                        print("    CPU s: " + ", ".join(f"{name} {value}" for name, value in
                                                        result["cpu_seconds"].items()), flush=True)
    finally:
        if workers:
            workers.stop()
        stop(receiver)

    def ratio(with_workers):
        rates = {count: [run["rate"] for run in runs if run["endpoints"] == count and run["workers"] == with_workers]
                 for count in (0, 2)}
        return round((sum(rates[2]) / len(rates[2])) / (sum(rates[0]) / len(rates[0])), 3)

    return {"runs": runs, "ratio_web_alone": ratio(False), "ratio": ratio(True)}


# --- 3. Profile --------------------------------------------------------------------------------------


def deliver_all(spent):
    """Everything due, posted and recorded from this one thread as a worker's pipeline does it
    (claims of 16 threads' worth, cut into runs), each phase's wall time added to `spent`."""
    from chatbot import event_delivery

    while True:
        mark = time.perf_counter()
        rows = event_delivery.claim(16 * event_delivery.CHUNK)
        spent["claim"] += time.perf_counter() - mark
        if not rows:
            return
        found, left = event_delivery.runs(rows, 16)
        for run in found:
            mark = time.perf_counter()
            results = event_delivery.post_all(run)
            spent["post"] += time.perf_counter() - mark
            mark = time.perf_counter()
            event_delivery.record(results)
            spent["record"] += time.perf_counter() - mark
        if left:  # over the endpoint's share of threads: due again at once, as the pipeline does
            mark = time.perf_counter()
            event_delivery.record([(row, None) for row in left])
            spent["record"] += time.perf_counter() - mark


def backlog(count):
    """`count` events due, recorded as the generator records them; returns the seconds it took."""
    from django.db import transaction
    from django.utils import timezone

    from chatbot import events

    now, started = timezone.now(), time.perf_counter()
    for first in range(0, count, 20):
        with transaction.atomic():
            events.emit_many("message.delivered", [(message_object(index, now), None)
                                                   for index in range(first, min(count, first + 20))])
    return time.perf_counter() - started


def profile(count=5000):
    """The delivery path in this process, one thread: claim, post, record, timed (wall clock, the
    database's part included), then again under cProfile."""
    from chatbot import events, webhook_endpoints
    from chatbot.models import EventDelivery, WebhookEndpoint

    receiver, port = receiver_process()
    try:
        for endpoint in WebhookEndpoint.objects.listed():  # an earlier part's
            webhook_endpoints.remove(endpoint)
        webhook_endpoints.add(f"http://127.0.0.1:{port}/hooks")
        events.forget_endpoints()
        emit_s = backlog(count)
        spent = {"claim": 0.0, "post": 0.0, "record": 0.0}
        cpu = time.process_time()
        deliver_all(spent)
        cpu = time.process_time() - cpu
        backlog(count)
        profiler = cProfile.Profile()
        profiler.enable()
        deliver_all({"claim": 0.0, "post": 0.0, "record": 0.0})
        profiler.disable()
        delivered = EventDelivery.objects.filter(status="delivered").count()
    finally:
        stop(receiver)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
    per_event = {name: round(seconds * 1000 / count, 3) for name, seconds in spent.items()}
    per_event["this process's CPU"] = round(cpu * 1000 / count, 3)
    per_event["emit (recording, for comparison)"] = round(emit_s * 1000 / count, 3)
    return {"events": count * 2, "delivered": delivered, "ms_per_event": per_event, "profile": text.getvalue()}


# --- Main --------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[250, 500, 1000, 1500])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--drain", type=int, default=30, help="seconds to wait for a step's last events")
    parser.add_argument("--webhook-seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-delivery", action="store_true")
    parser.add_argument("--skip-webhooks", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=2, type=float, metavar=("RATE", "SECONDS"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.receiver:
        return serve_receiver()
    if options.generate:
        return generate(*options.generate)
    if not options.skip_webhooks and not shutil.which("wrk"):
        sys.exit("wrk is needed for the webhook figure: apt-get install wrk (or --skip-webhooks)")

    env = server_env(fresh_database(DATABASE), WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
    manage(env, "migrate", "--noinput")
    setup_django(env)
    result = {"machine": machine(), "workers": options.workers,
              "targets": {"events_per_s": TARGET_RATE, "lag_p99_ms": SUSTAINED_P99_MS, "ack_ratio": TARGET_ACK_RATIO}}
    print(f"Machine: {result['machine']}; {options.workers} db_worker processes; PostgreSQL")
    broken = []
    if options.profile:
        result["profile"] = profile()
        print(f"Delivery path in one thread, {result['profile']['events'] // 2} events: ms per event "
              f"{result['profile']['ms_per_event']}")
        print(result["profile"]["profile"])
    if not options.skip_delivery:
        print(f"1. Events delivered to a receiver on 127.0.0.1, {options.seconds} s per rate:")
        result["delivery"] = delivery(env, options)
        sustained = [step["rate"] for step in result["delivery"]["steps"] if step["sustained"]]
        result["delivery"]["highest_sustained"] = max(sustained, default=0)
        print(f"   highest sustained rate: {result['delivery']['highest_sustained']}/s (target {TARGET_RATE}); "
              f"deliveries by status at the end: {result['delivery']['statuses']}")
        if result["delivery"]["highest_sustained"] < TARGET_RATE:
            broken.append(f"{TARGET_RATE} events/s not sustained")
        if any(step["lost"] for step in result["delivery"]["steps"]):
            broken.append("events lost")
    if not options.skip_webhooks:
        print(f"2. Webhooks acknowledged at full load, {options.webhook_seconds} s per run, 0 vs 2 endpoints:")
        result["webhooks"] = webhooks(env, options)
        print(f"   acked/s with 2 endpoints / without: gunicorn alone {result['webhooks']['ratio_web_alone']}, "
              f"with the workers {result['webhooks']['ratio']} (target >= {TARGET_ACK_RATIO})")
        if result["webhooks"]["ratio"] < TARGET_ACK_RATIO:
            broken.append("webhook acknowledgement rate lower with endpoints")
    save("events", result)
    if broken:
        sys.exit("FAIL: " + "; ".join(broken))


if __name__ == "__main__":
    main()

"""Webhook load benchmark (issue 3): signed webhooks with distinct wamids, against gunicorn on
PostgreSQL, beside a bare "return 200" Django view measured in the same run.

    .venv/bin/python bench/webhook_load.py [--seconds 10] [--workers 4]

Prints acked webhooks/s at full load (wrk, closed loop) and p50/p99 at a fixed 320 webhooks/s
(open loop: the full webhook load of an 80 messages/s number), then checks that every webhook
answered 200 was stored. Needs `wrk` (Debian: apt-get install wrk) and a local PostgreSQL.
"""

import argparse
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    APP_SECRET,
    PYTHON,
    ROOT,
    free_port,
    fresh_database,
    gunicorn,
    machine,
    manage,
    open_loop,
    percentile,
    save,
    server_env,
)

TARGET_RATE = 1000
FIXED_RATE = 320
TARGET_P99_MS = 250


def webhook_body(index):
    """A Meta-shaped text message, non-ASCII escaped as Meta escapes it (cloud-api.md §2, §4)."""
    wa_id = f"55119{index % 5000:08d}"
    document = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": f"Cliente {index % 5000} João"}, "wa_id": wa_id}],
            "messages": [{
                "from": wa_id, "id": f"wamid.BENCH{time.time_ns()}{index:08d}", "timestamp": str(int(time.time())),
                "type": "text", "text": {"body": f"Olá, quero saber o preço do pedido {index} 😀"},
            }],
        }}]}],
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest(), body


def run_wrk(port, bodies_file, seconds, path="/chatbot/webhook/", threads=2, connections=16):
    wrk = shutil.which("wrk")
    args = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-s", str(ROOT / "bench" / "wrk_webhook.lua"), f"http://127.0.0.1:{port}{path}",
            "--", str(bodies_file), str(threads)]
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    output = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    return {"rate": rate, "requests": total, "non_200": errors, **wrk_percentiles(output)}


def wrk_percentiles(output):
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    found = {}
    for label, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", output, re.M):
        found[f"p{label}_ms"] = round(float(value) * units[unit], 2)
    return found


def fixed_rate(port, seconds, offset, path="/chatbot/webhook/"):
    requests = []
    for index in range(int(FIXED_RATE * seconds)):
        signature, body = webhook_body(offset + index)
        requests.append(({"Content-Type": "application/json", "X-Hub-Signature-256": signature}, body))
    latencies, failures = open_loop(port, path, requests, FIXED_RATE)
    return {"rate": FIXED_RATE, "requests": len(requests), "non_200": failures,
            "p50_ms": round(percentile(latencies, 0.50), 2), "p99_ms": round(percentile(latencies, 0.99), 2)}


def stored_webhooks(env):
    code = ("import django; django.setup(); from chatbot.models import WebhookEvent, Message; "
            "print(WebhookEvent.objects.count(), Message.objects.count())")
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "hoztech.settings"},
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def measure(app, env, bodies_file, seconds, workers, offset, path="/chatbot/webhook/", threads=1):
    port = free_port()
    with gunicorn(app, port, env, workers, threads):
        warm = run_wrk(port, bodies_file, 2, path)  # warm-up: connections, imports, caches
        full = run_wrk(port, bodies_file, seconds, path)
        time.sleep(1)
        steady = fixed_rate(port, seconds, offset, path)
    acked = sum(run["requests"] - run["non_200"] for run in (warm, full, steady))
    return full, steady, acked


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="gunicorn gthread threads per worker")
    options = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed for the full-load figure: apt-get install wrk")

    database_url = fresh_database("hoztech_bench_webhook")
    env = server_env(database_url, LOG_LEVEL="INFO")
    manage(env, "migrate", "--noinput")

    with tempfile.TemporaryDirectory() as tmp:
        bodies_file = Path(tmp) / "bodies.txt"
        count = int(options.seconds * 3000 + 6000)
        with bodies_file.open("w") as out:
            for index in range(count):
                signature, body = webhook_body(index)
                out.write(f"{signature}\t{body.decode()}\n")

        reference = "bench.reference_app:application"
        common = {"env": env, "bodies_file": bodies_file, "seconds": options.seconds, "workers": options.workers,
                  "threads": options.threads}
        ref_full, ref_steady, _ = measure(reference, offset=count, **common)
        naive_full, naive_steady, _ = measure(reference, offset=count * 3, path="/naive/webhook/", **common)
        full, steady, acked = measure("hoztech.wsgi", offset=count * 2, **common)
        events, messages = stored_webhooks(env)

    result = {
        "machine": machine(), "workers": options.workers, "threads": options.threads, "seconds": options.seconds,
        "webhook_full": full, "webhook_320": steady, "bare_full": ref_full, "bare_320": ref_steady,
        "naive_full": naive_full, "naive_320": naive_steady,
        "acked": acked, "stored_events": events, "messages": messages,
        "targets": {"rate": TARGET_RATE, "p99_ms_at_320": TARGET_P99_MS},
    }
    save("webhook", result)
    print(f"Machine: {result['machine']}; gunicorn: {options.workers} workers x {options.threads} threads; "
          "PostgreSQL")
    rows = [("acked/s at full load", "rate", "full", f">= {TARGET_RATE}", 0),
            ("p50 at full load (ms)", "p50_ms", "full", "", 1),
            ("p50 at 320/s (ms)", "p50_ms", "320", "", 1),
            ("p99 at 320/s (ms)", "p99_ms", "320", f"<= {TARGET_P99_MS}", 1)]
    print(f"{'':24}{'webhook':>10}{'naive insert':>14}{'bare view':>11}   target")
    for label, key, run, target, digits in rows:
        values = [result[f"{name}_{run}"].get(key, 0) for name in ("webhook", "naive", "bare")]
        print(f"{label:24}{values[0]:>10.{digits}f}{values[1]:>14.{digits}f}{values[2]:>11.{digits}f}   {target}")
    print(f"non-200 answers: {full['non_200'] + steady['non_200']}; acked {acked}, stored {events}")
    if events < acked:
        sys.exit("FAIL: some acknowledged webhooks were not stored")


if __name__ == "__main__":
    main()

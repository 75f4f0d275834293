"""What the benchmarks share: a fresh PostgreSQL database, server processes started and stopped
by PID, signed webhook bodies, open-loop load at a fixed rate, and percentiles."""

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
GUNICORN = str(Path(PYTHON).parent / "gunicorn")
RESULTS = ROOT / "bench" / "results"
APP_SECRET = "bench-app-secret"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database(name):
    """Drop and create database `name` on the local PostgreSQL; returns its DATABASE_URL."""
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def server_env(database_url, **extra):
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "ENV_FILE": "",
        "DATABASE_URL": database_url, "SECRET_KEY": "bench-secret-key", "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false", "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "LOG_DIR": str(RESULTS / "logs"),
    }
    env.update({key: str(value) for key, value in extra.items()})
    return env


def setup_django(env):
    """Use the product's models from the benchmark process itself, on the benchmark's database."""
    import django

    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "hoztech.settings"
    django.setup()


def manage(env, *args):
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def wait_for_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def process(args, env, port=None):
    """Run a process for the duration of the block; stopped by its PID (SIGTERM, then SIGKILL)."""
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if port:
            wait_for_port(port)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def gunicorn(app, port, env, workers, threads=1):
    args = [GUNICORN, app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning"]
    if threads > 1:
        # gthread keeps HTTP connections alive (sync workers close each one after the answer).
        args += ["--worker-class", "gthread", "--threads", str(threads)]
    return process(args, env, port=port)


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def open_loop(port, path, requests, rate, threads=32, timeout=10, due_times=None):
    """Send `requests` (a list of (headers, body)) at `rate` per second on schedule, whatever the
    answers' speed; latency counts from the scheduled time, so a slow server cannot hide its queue
    (no coordinated omission). Returns (latencies in ms of 200 answers, count of other answers);
    `due_times`, a dict, gets each request's scheduled time.monotonic()."""
    start = time.monotonic() + 0.2
    next_index = iter(range(len(requests)))
    lock = threading.Lock()
    latencies, failures = [], []

    def worker():
        conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            due = start + index / rate
            if due_times is not None:
                due_times[index] = due
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            headers, body = requests[index]
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                conn.close()
                conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
                ok = False
            elapsed = (time.monotonic() - due) * 1000
            with lock:
                (latencies.append(elapsed) if ok else failures.append(index))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies, len(failures)


def machine():
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def save(name, result):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))

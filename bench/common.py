"""What the benchmarks share: a fresh PostgreSQL database, server processes started and stopped
by PID, signed webhook bodies, open-loop load at a fixed rate, and percentiles."""

import io
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


def existing_database(name):
    """DATABASE_URL of database `name` on the local PostgreSQL, or None when there is none."""
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL)
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        found = cursor.fetchone()
    conn.close()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name if found else None


def seeded_state(name, counts):
    """What a seed left in database `name`'s comment (`save_state`), when it is under a day old
    and `counts` ({model: expected rows}) still hold; else None, saying why."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    with connection.cursor() as cursor:
        cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name])
        comment = cursor.fetchone()[0]
    if not comment:
        return None
    state = json.loads(comment)
    age = timezone.now() - parse_datetime(state["seeded_at"])
    if age > timedelta(days=1):
        print(f"The seeded data is {age.days} day(s) old: seeding again.")
        return None
    if any(model.objects.count() != expected for model, expected in counts.items()):
        print("The seeded database's counts changed: seeding again.")
        return None
    return state


def save_state(name, state):
    """Keep what a seed made in database `name`'s comment, for `seeded_state`."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f'COMMENT ON DATABASE "{name}" IS %s', [json.dumps(state)])


def _copy_text(value):
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    elif not isinstance(value, str):
        value = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def copy_rows(model, fields, rows, chunk=100_000):
    """Insert `rows` (tuples of values for the model fields named in `fields`) into `model`'s
    table with PostgreSQL's COPY, on Django's connection: tens of times faster than the ORM.
    Every other column gets its field's default, so seeding code keeps working when a field is
    added; an auto `id` left out is numbered by the database. Returns the number of rows."""
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    named = {model._meta.get_field(name).column for name in fields}
    extra, values = [], []
    for field in model._meta.concrete_fields:
        if field.column in named or (field.primary_key and field.get_internal_type().endswith("AutoField")):
            continue
        auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
        value = now if auto else field.get_default()
        if hasattr(value, "resolve_expression"):
            continue  # a database default (db_default): the database fills it in
        extra.append(field)
        values.append(value)
    defaults = "".join("\t" + _copy_text(value) for value in values)
    columns = ", ".join(f'"{model._meta.get_field(name).column}"' for name in fields)
    columns += "".join(f', "{field.column}"' for field in extra)
    sql = f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN'
    count, lines = 0, []
    with connection.cursor() as cursor:
        for row in rows:
            lines.append("\t".join(map(_copy_text, row)) + defaults + "\n")
            if len(lines) >= chunk:
                cursor.copy_expert(sql, io.StringIO("".join(lines)))
                count, lines = count + len(lines), []
        if lines:
            cursor.copy_expert(sql, io.StringIO("".join(lines)))
            count += len(lines)
    return count


@contextmanager
def without_indexes(*models):
    """For a bulk load into empty tables: drop their indexes and their unique and foreign-key
    constraints (primary keys stay), and make them again at the end, each in one sorted build or
    one check instead of row by row. Use inside the loading transaction, before any row goes in."""
    from django.db import connection

    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'u')", [tables])
        constraints = cursor.fetchall()
        for table, name, _definition in constraints:
            cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint WHERE conindid = indexname::regclass)", [tables])
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    yield
    with connection.cursor() as cursor:
        for _name, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in constraints:
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')


# --- Helpers of the crash, fault and multi-node benchmarks (issue 8) ---------------------------

PNID = "106540352242922"
GRAPH_TOKEN = "bench-token"
WORKER_ARGS = ["manage.py", "db_worker", "--no-reload", "--queue-name", "*", "--interval", "0.2"]


def fake_graph_process(token=GRAPH_TOKEN, latency_ms=""):
    """Start the fake Graph API in its own process (answering after `latency_ms`, e.g. "100-300",
    as Meta does); returns (Popen, URL). Stop it by its PID."""
    latency = ["--latency-ms", latency_ms] if latency_ms else []
    proc = subprocess.Popen([PYTHON, "-m", "chatbot.tests.fake_graph", "--port", "0", "--token", token, *latency],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc, proc.stdout.readline().strip()


def stop(proc, grace=10):
    """Stop one process we started, by its PID: SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fake_call(url, path, payload=None, timeout=10):
    """GET (or POST `payload` as JSON) one of the fake Graph API's `/_fake/…` endpoints."""
    from urllib.request import Request, urlopen

    data = None if payload is None else json.dumps(payload).encode()
    request = Request(url + path, data=data, method="GET" if data is None else "POST",
                      headers={"Content-Type": "application/json"})
    with urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read() or b"{}")


def children(pid):
    """PIDs of the live children of process `pid` (gunicorn's workers, for a master's PID)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def signed_headers(body):
    import hashlib
    import hmac

    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": signature}


def status_webhook(*, wamid, status, recipient, callback="", moment=None):
    """The bytes Meta POSTs for one status of one of our messages, `biz_opaque_callback_data` echoed."""
    item = {"id": wamid, "status": status, "timestamp": str(int(moment or time.time())), "recipient_id": recipient}
    if callback:
        item["biz_opaque_callback_data"] = callback
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID}, "statuses": [item]}
    document = {"object": "whatsapp_business_account",
                "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}
    return json.dumps(document, separators=(",", ":")).encode()


def api_token(env, name="bench"):
    """A new send-API bearer token (`whatsapp_chatbot create-api-token`: the token is its last line)."""
    output = subprocess.run([PYTHON, "manage.py", "whatsapp_chatbot", "create-api-token", name], cwd=ROOT, env=env,
                            check=True, capture_output=True, text=True).stdout
    return output.strip().splitlines()[-1].strip()


def post(port, path, body, headers, timeout=10):
    """One POST to 127.0.0.1:`port` on a new connection; (status or None when it broke, body)."""
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return None, b""
    finally:
        conn.close()


def get_json(port, path, timeout=5):
    """(status or None, decoded JSON or None) of a GET to 127.0.0.1:`port`."""
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, None
    except OSError:
        return None, None
    finally:
        conn.close()


class Workers:
    """`db_worker` processes that a benchmark kills and restarts; each is stopped by its PID."""

    def __init__(self, env, count, prefix="bench"):
        self.env, self.prefix = env, prefix
        self.procs = [None] * count
        self.restarts = 0
        for index in range(count):
            self.start(index)

    def start(self, index):
        args = [PYTHON, *WORKER_ARGS, "--worker-id", f"{self.prefix}{index}"]
        self.procs[index] = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)

    def kill(self, index):
        """SIGKILL worker `index` (no clean-up of any kind) and start a new one in its place."""
        proc = self.procs[index]
        proc.kill()
        proc.wait()
        self.start(index)
        self.restarts += 1
        return proc.pid

    def pids(self):
        return [proc.pid for proc in self.procs]

    def stop(self):
        for proc in self.procs:
            if proc is not None:
                stop(proc, grace=30)


def wait_until(predicate, timeout, interval=0.5):
    """Call `predicate` until it returns something true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Traffic:
    """Open-loop POSTs from a pool of threads, every answer kept: each request is a dict with
    `port`, `path`, `body`, `headers` (and whatever the caller adds, e.g. `kind`); `status`
    (None when the connection broke) and `answer` are filled in, `tries` counted."""

    def __init__(self, threads=32, timeout=10):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="traffic")
        self.timeout = timeout
        self.lock = threading.Lock()
        self.done = []

    def submit(self, request):
        return self.pool.submit(self._post, request)

    def _post(self, request):
        request["status"], request["answer"] = post(request["port"], request["path"], request["body"],
                                                    request["headers"], timeout=self.timeout)
        request["tries"] = request.get("tries", 0) + 1
        if request["tries"] == 1:
            with self.lock:
                self.done.append(request)
        return request

    def paced(self, make, rate, seconds, stopping=None):
        """Submit `make(i)` at `rate` a second for `seconds` (or until `stopping` is set), on
        schedule whatever the answers' speed; run it in its own thread."""
        start = time.monotonic()
        for index in range(int(rate * seconds)):
            delay = start + index / rate - time.monotonic()
            if stopping is not None and stopping.wait(max(0, delay)):
                return
            if stopping is None and delay > 0:
                time.sleep(delay)
            self.submit(make(index))

    def redeliver(self, requests, ok, timeout):
        """Post again, as Meta does, each request whose answer is not `ok(status)`, until all are or
        `timeout` seconds pass; returns how many were posted again."""
        again = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # A request with no `tries` is still on its first way: wait for its answer.
            waiting = [request for request in requests if "tries" in request and not ok(request["status"])]
            if not waiting and all("tries" in request for request in requests):
                break
            for request in waiting:
                again.add(id(request))
                self._post(request)
            time.sleep(0.5)
        return len(again)

    def close(self):
        self.pool.shutdown(wait=True)


def verdict(broken, details=()):
    """Print the broken promises (and `details`) and exit 1, or say every promise held."""
    if broken:
        print("BROKEN PROMISES:\n  " + "\n  ".join(broken))
        for line in details:
            print(f"    {line}")
        sys.exit(1)
    print("every promise held")

"""Every benchmark and stress test, short, in one run (issue 8), and one report of their figures.

    .venv/bin/python bench/run_all.py [--skip NAME ...] [--only NAME ...] [--no-token-pause]

Runs, one after the other (they share the machine's 2 cores and its PostgreSQL), with durations
cut so that the whole run stays under 15 minutes: webhook_load, outbound, reply_latency, dashboard,
crash, meta_faults, db_fault, multinode, fuzz (those present in bench/). Each step runs in its own
process group with a time limit; its output goes to bench/results/logs/run_all_<name>.log and its
figures to bench/results/<name>.json. A skipped step's figures, if an earlier run saved them, are
reported with their date. The report (each figure beside its target and the in-run references,
the machine, the date) is printed and written into docs/benchmarks.md (between its run_all markers).

meta_faults includes a refused token, which pauses sending for the product's 5 minutes
(chatbot/outbox.TOKEN_PAUSE): about 6 of the 15 minutes. `--no-token-pause` leaves it out.
db_fault restarts the machine's shared PostgreSQL once (see bench/db_fault.py).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PYTHON, RESULTS, ROOT, machine  # noqa: E402

REPORT = ROOT / "docs" / "benchmarks.md"
# The run's report replaces what lies between these lines of docs/benchmarks.md (appended the first
# time); the rest of that file, the full-length runs and their analysis, is written by people.
START, END = "<!-- run_all: start -->", "<!-- run_all: end -->"


def write_report(text):
    document = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    block = f"{START}\n{text.rstrip()}\n{END}"
    if START in document and END in document:
        head, rest = document.split(START, 1)
        document = head + block + rest.split(END, 1)[1]
    else:
        document = document.rstrip() + "\n\n" + block + "\n"
    REPORT.write_text(document)

# name, script, arguments, result file (None: read from the output), time limit in seconds
STEPS = [
    ("webhook_load", "webhook_load.py", ["--seconds", "5", "--workers", "4"], "webhook", 240),
    ("outbound", "outbound.py", ["--seconds", "5", "--uncapped-messages", "5000"], "outbound", 240),
    ("reply_latency", "reply_latency.py", ["--seconds", "10"], "reply_latency", 240),
    ("dashboard", "dashboard.py", ["--requests", "10"], "dashboard", 420),
    ("crash", "crash.py", ["--seconds", "60", "--settle", "120"], "crash", 360),
    ("meta_faults", "meta_faults.py", ["--phase", "4", "--token-seconds", "3", "--recover", "420"], "meta_faults",
     600),
    ("db_fault", "db_fault.py", ["--seconds", "20", "--restart-at", "7"], "db_fault", 240),
    ("multinode", "multinode.py", ["--seconds", "20"], "multinode", 300),
    ("fuzz", "fuzz.py", ["--webhooks", "1000", "--api", "1000", "--seed", "8", "29", "404"], None, 420),
]


def run_step(name, script, args, limit):
    """Run one benchmark in its own process group, stopped (the whole group) at its time limit."""
    log = RESULTS / "logs" / f"run_all_{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen([PYTHON, str(ROOT / "bench" / script), *args], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            # The group holds the servers the benchmark started (gunicorn, workers, the fake).
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            code = "timeout"
    return {"code": code, "seconds": round(time.monotonic() - started), "log": str(log.relative_to(ROOT)),
            "output": log.read_text()[-4000:]}


def load(result_name, since):
    path = RESULTS / f"{result_name}.json"
    if not path.exists():
        return None, None
    when = datetime.fromtimestamp(path.stat().st_mtime)
    return json.loads(path.read_text()), (None if path.stat().st_mtime >= since else when)


def fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows):
    lines = ["| figure | measured | target | in-run reference |", "|---|---:|---:|---|"]
    lines += [f"| {label} | {measured} | {target} | {reference} |" for label, measured, target, reference in rows]
    return lines


def broken_rows(result):
    broken = result.get("broken") or []
    return [("broken promises", "**" + "; ".join(broken) + "**" if broken else "none", "none", "")]


def webhook_rows(r):
    full, steady = r["webhook_full"], r["webhook_320"]
    return [
        ("acked webhooks/s, full load (wrk)", fmt(full["rate"], 0), "≥ 1,000",
         f"naive insert {fmt(r['naive_full']['rate'], 0)}, bare view {fmt(r['bare_full']['rate'], 0)}"),
        ("p50 at full load (ms)", fmt(full.get("p50_ms")), "",
         f"naive {fmt(r['naive_full'].get('p50_ms'))}, bare {fmt(r['bare_full'].get('p50_ms'))}"),
        ("p99 at 320/s (ms)", fmt(steady["p99_ms"]), "≤ 250",
         f"naive {fmt(r['naive_320']['p99_ms'])}, bare {fmt(r['bare_320']['p99_ms'])}"),
        ("non-200 answers", fmt(full["non_200"] + steady["non_200"]), "0", ""),
        ("acked / stored", f"{fmt(r['acked'])} / {fmt(r['stored_events'])}", "stored ≥ acked", ""),
    ]


def outbound_rows(r):
    capped, uncapped = r["capped"], r["uncapped"]
    return [
        ("cap 80/s: achieved messages/s", f"{fmt(capped['rate'])} ({capped['rate'] / 80:.0%})", "≥ 95 % of 80",
         "the cap"),
        ("cap 80/s: busiest second", fmt(capped["busiest_second"]), "≤ 80", ""),
        ("cap 80/s: sent / queued, distinct wamids",
         f"{fmt(capped['sent'])} / {fmt(capped['queued'])}, {fmt(capped['unique_wamids'])}", "all, once", ""),
        ("uncapped: messages/s", fmt(uncapped["rate"]), "≥ 1,000", ""),
    ]


def latency_rows(r):
    return [
        ("reply latency p50 (ms)", fmt(r["p50_ms"]), f"≤ {r['targets']['p50_ms']}",
         f"{r['rate']} first turns/s, cap {r.get('cap')}"),
        ("reply latency p99 (ms)", fmt(r["p99_ms"]), f"≤ {r['targets']['p99_ms']}", ""),
        ("answered / webhooks", f"{fmt(r['answered'])} / {fmt(r['webhooks'])}", "all", ""),
    ]


def dashboard_rows(r):
    return [(f"{name}: p95 (ms)", fmt(page["p95_ms"]) + ("" if page["ok"] else " **over**"),
             f"≤ {r['target_p95_ms']}", f"p50 {fmt(page['p50_ms'])}, {page['queries']} queries")
            for name, page in r["pages"].items()]


def crash_rows(r):
    return [
        ("SIGKILLs (gunicorn workers / db_workers)",
         f"{r['kill_count']} ({r['gunicorn_kills']} / {r['db_worker_kills']})", "every 5–15 s",
         f"{r['seconds']} s of load"),
        ("inbound webhooks 200 / posted (delivered again)",
         f"{fmt(r['inbound_acked'])} / {fmt(r['inbound_posted'])} ({r['inbound_redelivered']})", "all in the end", ""),
        ("acked webhooks not stored / stored twice", f"{r['webhooks_not_stored']} / {r['webhooks_stored_twice']}",
         "0 / 0", ""),
        ("inbound wamids applied exactly once", f"{fmt(r['inbound_applied_once'])} / {fmt(r['inbound_acked'])}",
         "all", ""),
        ("statuses acked, not applied", fmt(r["statuses_not_applied"]), "0", f"{fmt(r['statuses_acked'])} acked"),
        ("API sends accepted, final status", f"{fmt(r['api_accepted'])}: {json.dumps(r['api_final'])}", "no queued",
         ""),
        ("messages accepted twice by the fake", fmt(r["duplicates"]), "0", f"{fmt(r['fake_accepted_messages'])} sent"),
        ("left `sending` (in-flight rule)", fmt(r["in_flight_sending"]), "failed by the sweep after 10 min",
         f"{r['in_flight_reached_fake']} reached the fake"),
    ]


def meta_rows(r):
    return [
        ("schedule", ", ".join(f"{name} {length:g} s" for name, length in r["plan"]), "", ""),
        ("API sends accepted / posted", f"{fmt(r['api_accepted'])} / {fmt(r['api_posted'])}", "all", ""),
        ("final status of the accepted", json.dumps(r["final_status"]), "all sent", ""),
        ("messages accepted twice by the fake", fmt(r["duplicates"]), "0", ""),
        ("busiest second at the fake", fmt(r["busiest_second"]), f"≤ {r['cap']}", "every request counted"),
        ("all sent, s after the faults ended", fmt(r["recovered_s_after_faults"]), "",
         "5 min token pause" if any(name == "190" for name, _ in r["plan"]) else ""),
    ]


def db_fault_rows(r):
    return [
        ("first answers", json.dumps(r["first_answers"]), "non-200 during the outage",
         f"restart took {r['restart_s']} s"),
        ("answered 200 but not stored", fmt(r["acked_but_not_stored"]), "0", ""),
        ("acked wamids applied once (after redelivery)", f"{fmt(r['applied_once'])} / {fmt(r['acked_in_the_end'])}",
         "all", f"{r['redelivered']} delivered again"),
        ("health during / after", f"{'down' if r['health_down_seen'] else 'down not seen'} / {r['health_after']}",
         "down / ok", ""),
        ("everything applied, s after the restart", fmt(r["all_applied_s_after_restart"]), "no manual step",
         f"db_worker exit codes {r.get('db_worker_exit_codes', 'not recorded')}"),
    ]


def multinode_rows(r):
    return [
        ("answers by port", json.dumps(r["answered_by_port"]), "both", ""),
        ("inbound wamids applied once", f"{fmt(r['inbound_applied_once'])} / {fmt(r['inbound_acked'])}", "all", ""),
        ("messages accepted twice by the fake", fmt(r["duplicates"]), "0", f"{fmt(r['fake_accepted_messages'])} sent"),
        ("busiest second at the fake", fmt(r["busiest_second"]), f"≤ {r['cap']}", ""),
        ("rate while the cap binds", fmt(r["rate_while_busy"]), f"≈ {r['cap']}", ""),
        ("all outbound by status", json.dumps(r["outbound_by_status"]), "no queued", ""),
    ]


RENDER = {"webhook_load": webhook_rows, "outbound": outbound_rows, "reply_latency": latency_rows,
          "dashboard": dashboard_rows, "crash": crash_rows, "meta_faults": meta_rows, "db_fault": db_fault_rows,
          "multinode": multinode_rows}


def fuzz_lines(output):
    keep = [line for line in output.splitlines() if line.strip() and not line.startswith(" " * 6)]
    return ["    " + line for line in keep[-25:]]


def report(ran, since):
    now = datetime.now()
    load_average = os.getloadavg()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    lines = [
        "## The latest run of bench/run_all.py",
        "",
        f"Run of {now:%Y-%m-%d %H:%M}, on {machine()}, PostgreSQL 15 on the same machine; commit {commit} "
        f"with uncommitted changes of the working tree; load average at the end {load_average[0]:.1f}. "
        "Short durations (see bench/run_all.py): compare each figure with its in-run reference, not "
        "across days. The sections above have the full-length runs.",
        "",
        "| step | result | seconds | log |",
        "|---|---|---:|---|",
    ]
    for name, outcome in ran.items():
        if outcome is None:
            lines.append(f"| {name} | skipped | | |")
        else:
            verdict = "ok" if outcome["code"] == 0 else f"**exit {outcome['code']}**"
            lines.append(f"| {name} | {verdict} | {outcome['seconds']} | `{outcome['log']}` |")
    for name, _script, _args, result_name, _limit in STEPS:
        if name not in ran:
            continue
        lines += ["", f"### {name}", ""]
        if result_name is None:
            outcome = ran[name]
            lines += fuzz_lines(outcome["output"]) if outcome else ["not run"]
            continue
        result, stale = load(result_name, since)
        if result is None:
            lines.append("no figures (the step saved none)")
            continue
        if stale:
            lines += [f"Figures of an earlier run ({stale:%Y-%m-%d %H:%M}): this step did not save new ones.", ""]
        try:
            rows = RENDER[name](result) + (broken_rows(result) if "broken" in result else [])
        except (KeyError, TypeError, ZeroDivisionError) as error:
            rows = [("figures unreadable", repr(error), "", "")]
        lines += table(rows)
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [step[0] for step in STEPS]
    parser.add_argument("--skip", nargs="*", default=[], choices=names)
    parser.add_argument("--only", nargs="*", default=[], choices=names)
    parser.add_argument("--no-token-pause", action="store_true", help="meta_faults without the refused token")
    options = parser.parse_args()

    since = time.time()
    ran = {}
    for name, script, args, _result_name, limit in STEPS:
        if not (ROOT / "bench" / script).exists():
            continue
        if name in options.skip or (options.only and name not in options.only):
            ran[name] = None
            continue
        if name == "meta_faults" and options.no_token_pause:
            args = [*args, "--token-seconds", "0"]
        print(f"== {name}: {script} {' '.join(args)}", flush=True)
        ran[name] = run_step(name, script, args, limit)
        print(f"   exit {ran[name]['code']} after {ran[name]['seconds']} s", flush=True)
    text = report(ran, since)
    write_report(text)
    print(text)
    failed = [name for name, outcome in ran.items() if outcome and outcome["code"] != 0]
    if failed:
        sys.exit(f"FAIL: {', '.join(failed)}")


if __name__ == "__main__":
    main()

"""CPU accounting for the benchmarks, from /proc (Linux): the CPU seconds of the processes a
benchmark started (with their children), and how busy the whole machine was meanwhile. Other
people's work on the same machine shows in the second figure and not in the first, so a run can
be judged against the background load it had."""

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    # The command name, in parentheses, may hold spaces: split after its closing parenthesis.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK  # ppid, utime + stime


def process_cpu(pids):
    """CPU seconds used so far by `pids` and every live descendant of theirs."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = _stat(entry.name)
            except (OSError, IndexError, ValueError):
                continue  # ended meanwhile
    children = {}
    for pid, (ppid, _cpu) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0.0, list(pids)
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][1]
            stack.extend(children.get(pid, ()))
    return total


def machine_ticks():
    """(busy, total) CPU ticks of the whole machine since boot (all cores)."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def machine_busy(before, after):
    """The fraction of the machine's CPU (all cores) busy between two `machine_ticks()`."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total if total else float("nan")


def postgres_backends(database):
    """The PostgreSQL backends connected to `database` now (their title names it). A backend
    whose connection closed before the count is missed: the figure is a lower bound."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("postgres: ") and f" {database} " in title:
                pids.append(int(entry.name))
    return pids


def _per_pid(pids):
    return {pid: process_cpu([pid]) for pid in pids}


class Meter:
    """CPU used between `start()` and `stop()` by named groups of processes (each with its
    children), by the benchmark database's PostgreSQL backends, and by the whole machine."""

    def __init__(self, groups, database):
        self.groups, self.database = groups, database  # {name: [pid, ...]}

    def start(self):
        self.before = {name: process_cpu(pids) for name, pids in self.groups.items()}
        self.pg_before = _per_pid(postgres_backends(self.database))
        self.ticks = machine_ticks()
        return self

    def stop(self):
        """{group: CPU seconds, "postgres": …, "machine_busy": fraction of all cores}."""
        used = {name: process_cpu(pids) - self.before[name] for name, pids in self.groups.items()}
        pg_after = _per_pid(postgres_backends(self.database))
        used["postgres"] = sum(cpu - self.pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
        used = {name: round(value, 2) for name, value in used.items()}
        used["machine_busy"] = round(machine_busy(self.ticks, machine_ticks()), 3)
        return used


def describe(used, count, what="message"):
    """One line: CPU ms per `what` of each group, and how busy the machine was."""
    parts = [f"{name} {used[name] * 1000 / count:.1f}" for name in used if name != "machine_busy"]
    return f"CPU ms per {what}: " + ", ".join(parts) + f"; machine {used['machine_busy']:.0%} busy (all cores)"

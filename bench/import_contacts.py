"""Contact import benchmark (issue 16): `whatsapp_chatbot import-contacts` of a 100,000-row file
into PostgreSQL, as the owner runs it; target <= 20 s.

    .venv/bin/python bench/import_contacts.py [--rows 100000]

The file is what Excel in Brazil saves: Windows-1252, ";", numbers in every form people write
((11) 98765-4321, +55 21 8765-4321, 011 3456-7890…), a name, a city, a plan, labels, an opt-in
column and its date, and one line in a thousand broken. A fresh database `hoztech_bench_import`
holds 20,000 contacts already (some stored without the ninth digit), so the import creates,
updates and matches both forms. Then the same file again (nothing to change). Each run is the
command in its own process, timed from start to exit.
"""

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PYTHON, ROOT, fresh_database, machine, manage, save, server_env, setup_django  # noqa: E402
from bench.dashboard import FIRST_NAMES, LAST_NAMES  # noqa: E402

DATABASE = "hoztech_bench_import"
TARGET_S = 20
EXISTING = 20_000
CITIES = ["São Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Recife", "Salvador", "Porto Alegre"]
AREAS = [11, 21, 31, 41, 81, 71, 51, 61, 85, 91]


def number(index):
    """The index-th customer's number, 55 + area + 9 + 8 digits."""
    return f"55{AREAS[index % len(AREAS)]}9{10_000_000 + index:08d}"


def written(wa_id, rng):
    """A number as someone typed it."""
    area, local = wa_id[2:4], wa_id[4:]
    return rng.choice([
        f"({area}) {local[:5]}-{local[5:]}", f"+55 {area} {local[:5]}-{local[5:]}", f"{area}{local}",
        f"0{area} {local}", f"+55 {area} {local[1:5]}-{local[5:]}", wa_id,
    ])


def csv_file(rows, rng):
    lines = ["Nome;Telefone;Cidade;Plano;Etiquetas;opt_in;opt_in_em"]
    for index in range(rows):
        if index % 1000 == 999:
            lines.append(f"Linha quebrada;{index};a;b;c;d;e;f;g")
            continue
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        labels = rng.choice(["", "VIP", "Clientes 2024", "VIP|Atacado"])
        opt_in = rng.choice(["", "site", "balcão", "sim"])
        day = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2025" if opt_in else ""
        lines.append(f"{name};{written(number(index), rng)};{rng.choice(CITIES)};{rng.choice(['Ouro', 'Prata'])};"
                     f"{labels};{opt_in};{day}")
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def seed_existing(env):
    setup_django(env)
    from chatbot.models import Contact

    Contact.objects.bulk_create(
        [Contact(wa_id=number(index) if index % 2 else number(index)[:4] + number(index)[5:], name=f"Já era {index}")
         for index in range(0, EXISTING * 5, 5)], batch_size=5000)


def timed_import(env, path):
    started = time.perf_counter()
    done = subprocess.run([PYTHON, "manage.py", "whatsapp_chatbot", "import-contacts", str(path), "--label", "Feira"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"FAIL: the import exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return seconds, done.stdout.strip().splitlines()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    options = parser.parse_args()
    env = server_env(fresh_database(DATABASE), LOG_LEVEL="WARNING", LANGUAGE_CODE="pt-br")
    manage(env, "migrate", "--noinput")
    seed_existing(env)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clientes.csv"
        path.write_bytes(csv_file(options.rows, random.Random(16)))
        first, report = timed_import(env, path)
        again, report_again = timed_import(env, path)
    result = {"machine": machine(), "rows": options.rows, "existing": EXISTING, "first_s": round(first, 1),
              "again_s": round(again, 1), "report": report, "report_again": report_again, "target_s": TARGET_S}
    save("import_contacts", result)
    print(f"Machine: {result['machine']}; PostgreSQL; {options.rows:,} rows, {EXISTING:,} contacts already there")
    print(f"first import: {first:.1f} s  ({report})  target <= {TARGET_S} s")
    print(f"same file again: {again:.1f} s  ({report_again})")
    if first > TARGET_S:
        sys.exit("FAIL: the import took longer than the target")


if __name__ == "__main__":
    main()

"""Schemathesis against the integrators' API as /chatbot/api/schema/ describes it (issue 8).

    python3 -m venv /tmp/st && /tmp/st/bin/pip install schemathesis==4.32.5
    SCHEMATHESIS=/tmp/st/bin/st .venv/bin/python bench/schemathesis_run.py [--max-examples 100]

Schemathesis lives in its own throwaway virtualenv (it pins its own Hypothesis and is not a
dependency of the product or its tests). This script serves the app with gunicorn on 127.0.0.1
over a scratch SQLite database, creates an API token and a customer whose 24-hour window is open,
runs `st run` with every check, and exits with its exit code.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PYTHON, ROOT, free_port, gunicorn, server_env  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    st = os.environ.get("SCHEMATHESIS", "st")

    scratch = Path(tempfile.mkdtemp(prefix="hoztech-st-"))
    env = server_env(f"sqlite:///{scratch / 'st.sqlite3'}", LOG_DIR=scratch, MEDIA_ROOT=scratch / "media",
                     API_REQUESTS_PER_MINUTE=10**9)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    created = subprocess.run([PYTHON, "manage.py", "whatsapp_chatbot", "create-api-token", "schemathesis"],
                             cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    token = created.stdout.strip().splitlines()[-1]
    subprocess.run([PYTHON, "manage.py", "shell", "-c",
                    "from django.utils import timezone; from chatbot.models import Contact; "
                    "Contact.objects.create(wa_id='5511987654321', last_inbound_at=timezone.now())"],
                   cwd=ROOT, env=env, check=True)
    port = free_port()
    with gunicorn("hoztech.wsgi", port, env, workers=2):
        command = [st, "run", f"http://127.0.0.1:{port}/chatbot/api/schema/", "--url", f"http://127.0.0.1:{port}/chatbot",
                   "-H", f"Authorization: Bearer {token}", "--checks", "all", "--max-examples", str(args.max_examples),
                   "--seed", str(args.seed), "--report", "junit", "--report-dir", str(scratch)]
        print(" ".join(command).replace(token, "<token>"), flush=True)
        return subprocess.run(command, cwd=scratch).returncode  # its .schemathesis/ cache stays there


if __name__ == "__main__":
    sys.exit(main())

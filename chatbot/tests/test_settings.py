"""Settings are read once per process, so each case starts a fresh interpreter."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]

PRINT_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
names = ["DEBUG", "ALLOWED_HOSTS", "WEBHOOK_VERIFY_TOKEN", "WHATSAPP_API_VERSION", "WHATSAPP_GRAPH_URL",
         "WHATSAPP_MESSAGES_PER_SECOND", "MESSAGES_PER_MINUTE", "STORE_MESSAGE_UP_TO", "MAX_FILE_SIZE",
         "ALLOWED_EXTENSIONS", "TIME_ZONE", "LANGUAGE_CODE", "WHATSAPP_ACCESS_TOKEN", "REDIS_URL",
         "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT"]
out = {name: getattr(settings, name) for name in names}
out["DB_ENGINE"] = settings.DATABASES["default"]["ENGINE"]
out["DB_NAME"] = str(settings.DATABASES["default"]["NAME"])
out["CACHE"] = settings.CACHES["default"]["BACKEND"]
print(json.dumps(out))
"""


def run_python(code, **variables):
    # A clean environment: neither the test run's variables nor a developer's .env leak in.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    env.update({"ENV_FILE": "", "DJANGO_SETTINGS_MODULE": "hoztech.settings", "LOG_DIR": "/tmp/hoztech-test-logs"})
    env.update(variables)
    return subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True)


def read_settings(**variables):
    result = run_python(PRINT_SETTINGS, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_defaults_follow_the_contract():
    values = read_settings(DEBUG="true")
    assert values["DEBUG"] is True
    assert values["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1"]
    assert values["DB_ENGINE"] == "django.db.backends.sqlite3"
    assert values["DB_NAME"] == str(BASE_DIR / "db.sqlite3")
    assert values["WHATSAPP_ACCESS_TOKEN"] == ""
    assert values["WEBHOOK_VERIFY_TOKEN"] == "hoz_tech_secure_token_2024"
    assert values["WHATSAPP_API_VERSION"] == "v25.0"
    assert values["WHATSAPP_GRAPH_URL"] == "https://graph.facebook.com"
    assert values["WHATSAPP_MESSAGES_PER_SECOND"] == 80
    assert values["MESSAGES_PER_MINUTE"] == 30
    assert values["STORE_MESSAGE_UP_TO"] == 90
    assert values["MAX_FILE_SIZE"] == 20971520
    assert values["ALLOWED_EXTENSIONS"] == [
        "jpg",
        "jpeg",
        "png",
        "gif",
        "mp4",
        "mp3",
        "ogg",
        "pdf",
        "doc",
        "docx",
        "xls",
        "xlsx",
    ]
    assert values["TIME_ZONE"] == "America/Sao_Paulo"
    assert values["LANGUAGE_CODE"] == "pt-br"
    assert values["CACHE"].endswith("LocMemCache")


def test_values_from_the_environment():
    values = read_settings(
        DEBUG="true",
        DATABASE_URL="postgres://user:pw@db.example:5432/hoz",
        ALLOWED_HOSTS="bot.example.com, www.bot.example.com",
        WHATSAPP_MESSAGES_PER_SECOND="1000",
        ALLOWED_EXTENSIONS="PDF,.png",
        LANGUAGE_CODE="en",
        REDIS_URL="redis://127.0.0.1:6379/1",
        WHATSAPP_GRAPH_URL="http://127.0.0.1:8765/",
    )
    assert values["DB_ENGINE"] == "django.db.backends.postgresql"
    assert values["DB_NAME"] == "hoz"
    assert values["ALLOWED_HOSTS"] == ["bot.example.com", "www.bot.example.com"]
    assert values["WHATSAPP_MESSAGES_PER_SECOND"] == 1000
    assert values["ALLOWED_EXTENSIONS"] == ["pdf", "png"]
    assert values["LANGUAGE_CODE"] == "en"
    assert values["CACHE"].endswith("RedisCache")
    assert values["WHATSAPP_GRAPH_URL"] == "http://127.0.0.1:8765"


def test_production_is_locked_down_when_debug_is_off():
    values = read_settings(SECRET_KEY="x" * 50)
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_SSL_REDIRECT"] is True


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WHATSAPP_MESSAGES_PER_SECOND", "abc"),
        ("WHATSAPP_MESSAGES_PER_SECOND", "0"),
        ("MESSAGES_PER_MINUTE", "1.5"),
        ("STORE_MESSAGE_UP_TO", "-3"),
        ("MAX_FILE_SIZE", "20MB"),
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("DATABASE_URL", "postgres://user@host:notaport/db"),
        ("DEBUG", "maybe"),
        ("TIME_ZONE", "Mars/Olympus"),
        ("LANGUAGE_CODE", "klingon"),
        ("WHATSAPP_API_VERSION", "25"),
        ("WHATSAPP_GRAPH_URL", "graph.facebook.com"),
        ("REDIS_URL", "localhost:6379"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_the_variable(variable, value):
    result = run_python("import django; django.setup()", SECRET_KEY="x" * 50, **{variable: value})
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: Environment variable " + variable)


def test_secret_key_is_required_without_debug():
    result = run_python("import django; django.setup()")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_a_malformed_secret_is_not_echoed():
    result = run_python("import django; django.setup()", DEBUG="verysecretvalue")
    assert "verysecretvalue" not in result.stderr


def test_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / "custom.env"
    env_file.write_text("DEBUG=true\nMESSAGES_PER_MINUTE=12\nSTORE_MESSAGE_UP_TO=30\n")
    values = read_settings(ENV_FILE=str(env_file), STORE_MESSAGE_UP_TO="45")
    assert values["MESSAGES_PER_MINUTE"] == 12
    assert values["STORE_MESSAGE_UP_TO"] == 45


def test_check_deploy_warns_of_the_public_verify_token_in_live_mode():
    code = "from django.core.management import execute_from_command_line; " \
           "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])"
    secret = "q" * 20 + "Zk8$Lm3@pWx!9vRt#2yNb&6hJ^cF0sDgA"
    live = {"SECRET_KEY": secret, "ALLOWED_HOSTS": "bot.example.com", "WHATSAPP_ACCESS_TOKEN": "EAAG" + "x" * 30}
    result = run_python(code, **live)
    assert result.returncode != 0
    assert "chatbot.W001" in result.stderr and "WEBHOOK_VERIFY_TOKEN" in result.stderr
    assert run_python(code, **live, WEBHOOK_VERIFY_TOKEN="a-long-random-value-only-we-know").returncode == 0


def test_check_deploy_is_clean_with_production_settings():
    code = (
        "import sys; from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])"
    )
    secret = "q" * 20 + "Zk8$Lm3@pWx!9vRt#2yNb&6hJ^cF0sDgA"
    result = run_python(code, SECRET_KEY=secret, ALLOWED_HOSTS="bot.example.com")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout

"""The in-run references for the webhook benchmark, served by the same gunicorn:

- `/chatbot/webhook/`: a bare Django view that reads the body and answers 200 (what Django costs);
- `/naive/webhook/`: the naive receiver: verify the signature, INSERT the raw body with one SQL
  statement, commit, answer 200 (what durable acknowledgement costs at the least).

    DATABASE_URL=postgres://… gunicorn bench.reference_app:application
"""

import hashlib
import hmac
import os

import django
import environ
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db import connection, transaction
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

SECRET = os.environ.get("WHATSAPP_APP_SECRET", "").encode()


@csrf_exempt
def bare(request):
    _ = request.body  # read the body as the real webhook does
    return HttpResponse("OK", content_type="text/plain")


@csrf_exempt
def naive(request):
    body = request.body
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        return HttpResponse(status=403)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_naive_event (body) VALUES (%s)", [body.decode()])
    return HttpResponse("OK", content_type="text/plain")


urlpatterns = [path("chatbot/webhook/", bare), path("naive/webhook/", naive)]

settings.configure(
    DEBUG=False,
    SECRET_KEY="reference-app-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    DATA_UPLOAD_MAX_MEMORY_SIZE=3 * 1024 * 1024,
    DATABASES={"default": {**environ.Env.db_url_config(os.environ["DATABASE_URL"]), "CONN_MAX_AGE": 60}},
)
django.setup()
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS bench_naive_event (id bigserial PRIMARY KEY, body text NOT NULL)")
connection.close()
application = get_wsgi_application()

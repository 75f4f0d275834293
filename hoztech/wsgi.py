"""The WSGI application: gunicorn and runserver serve `application`.

Meta's webhook (`/chatbot/webhook/`) goes through a handler with only the security and common
middleware: it uses no session, user, CSRF token, message or language, and skipping them is a
fifth of its CPU per request, at up to a thousand requests a second (docs/benchmarks.md).
Every other URL gets the whole `MIDDLEWARE` of the settings.
"""

import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hoztech.settings")

WEBHOOK_PATH = "/chatbot/webhook/"
WEBHOOK_MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"]


class WebhookHandler(WSGIHandler):
    def load_middleware(self, is_async=False):
        from django.conf import settings

        everything = settings.MIDDLEWARE
        settings.MIDDLEWARE = WEBHOOK_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = everything


site = get_wsgi_application()
webhook = WebhookHandler()


def application(environ, start_response):
    handler = webhook if environ.get("PATH_INFO") == WEBHOOK_PATH else site
    return handler(environ, start_response)

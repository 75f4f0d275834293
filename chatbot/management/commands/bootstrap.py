"""Prepare a fresh installation: the default business number, the default departments, the
operators group, in sandbox mode two example templates (nothing can be synced from Meta without a
token, and templates and campaigns need approved ones), and, when nobody can log in yet, an
administrator account whose login is printed."""

from datetime import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _

from chatbot.dashboard.permissions import OPERATORS_GROUP
from chatbot.models import BotSettings, BusinessHours, Department, PhoneNumber, Template

DEFAULT_DEPARTMENTS = ["Vendas", "Suporte", "Financeiro"]
# Monday to Friday 08:00–18:00, Saturday 08:00–12:00: the owner edits them in the admin.
DEFAULT_HOURS = [(day, time(8), time(18)) for day in range(5)] + [(5, time(8), time(12))]
# Approved, as Meta would list them; no WhatsApp account, so the first real `sync-templates` marks
# them gone (DELETED).
SANDBOX_TEMPLATES = [
    {"name": "pedido_enviado", "category": "UTILITY", "components": [
        {"type": "BODY", "text": "Olá {{1}}! Seu pedido {{2}} saiu para entrega. 🚚"}]},
    {"name": "promocao_semana", "category": "MARKETING", "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Oferta da semana"},
        {"type": "BODY", "text": "Oi {{1}}! Use o cupom {{2}} e ganhe 10% de desconto até domingo."},
        {"type": "FOOTER", "text": "Responda para falar com a gente"},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Parar promoções"}]}]},
]


class Command(BaseCommand):
    help = _("Seed the default configuration and create the first administrator if there is none.")

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help=_("Where the server will answer."))
        parser.add_argument("--username", default="admin", help=_("Login of the first administrator."))

    @transaction.atomic
    def handle(self, *args, url, username, **options):
        number = PhoneNumber.objects.default()
        Group.objects.get_or_create(name=OPERATORS_GROUP)
        if not Department.objects.exists():
            for position, name in enumerate(DEFAULT_DEPARTMENTS):
                Department.objects.create(name=name, position=position)
        BotSettings.load()
        if not BusinessHours.objects.exists():
            for weekday, opens, closes in DEFAULT_HOURS:
                BusinessHours.objects.create(weekday=weekday, opens=opens, closes=closes)

        if not settings.WHATSAPP_ACCESS_TOKEN and not Template.objects.exists():
            for template in SANDBOX_TEMPLATES:
                Template.objects.create(language="pt_BR", status="APPROVED", **template)
            self.stdout.write(_("Sandbox mode: %(count)d example templates to try templates and campaigns with.")
                              % {"count": len(SANDBOX_TEMPLATES)})

        url = url.rstrip("/")
        self.stdout.write(_("Business number: %(number)s") % {"number": number})
        self.stdout.write(_("Open %(url)s/chatbot/dashboard/ (admin: %(url)s/admin/, health: %(url)s/chatbot/health/)")
                          % {"url": url})

        User = get_user_model()
        if User.objects.filter(is_active=True).exists():
            self.stdout.write(
                _("Log in with your existing account (new password: python manage.py changepassword LOGIN).")
            )
            return
        password = get_random_string(16)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                _("Login: %(user)s  Password: %(password)s")
                % {
                    "user": username,
                    "password": password,
                }
            )
        )

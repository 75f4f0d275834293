from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from chatbot.models import Department, PhoneNumber

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("bootstrap", *args, stdout=out)
    return out.getvalue()


def test_fresh_install_gets_a_login_that_works():
    output = run("--url", "http://127.0.0.1:8000/")
    last = output.strip().splitlines()[-1]
    assert "admin" in last
    password = last.split()[-1]
    user = authenticate(username="admin", password=password)
    assert user is not None and user.is_superuser
    assert "http://127.0.0.1:8000/admin/" in output
    assert PhoneNumber.objects.count() == 1
    assert list(Department.objects.values_list("name", flat=True)) == ["Vendas", "Suporte", "Financeiro"]
    assert Group.objects.filter(name="Operadores").exists()


def test_running_again_changes_nothing_and_shows_no_password():
    run()
    output = run()
    assert get_user_model().objects.count() == 1
    assert Department.objects.count() == 3
    assert "changepassword" in output


def test_sandbox_mode_gets_example_templates_a_real_sync_retires(settings):
    from chatbot import campaigns, message_templates
    from chatbot.models import Contact, Label, Template

    settings.WHATSAPP_ACCESS_TOKEN = ""
    run()
    run()  # once
    assert set(Template.objects.values_list("name", "status")) == {("pedido_enviado", "APPROVED"),
                                                                    ("promocao_semana", "APPROVED")}
    # Good enough for a campaign's whole path.
    Label.objects.create(name="teste").contacts.add(Contact.objects.create(wa_id="5511987654321", name="Ana"))
    plan = campaigns.plan(template_name="promocao_semana", language="pt_BR", audience={"labels": ["teste"]},
                          variables={"1": "{first_name}", "2": "BEMVINDO"})
    assert plan.recipients == 1
    # With a WhatsApp account, Meta's list is the truth: the examples are marked gone.
    with pytest.MonkeyPatch.context() as patch:
        settings.WHATSAPP_ACCESS_TOKEN, settings.WHATSAPP_BUSINESS_ACCOUNT_ID = "token", "WABA"
        patch.setattr(message_templates.graph, "list_templates", lambda waba_id: [])
        message_templates.sync()
    assert set(Template.objects.values_list("status", flat=True)) == {"DELETED"}


def test_a_live_installation_gets_no_example_templates(settings):
    from chatbot.models import Template

    settings.WHATSAPP_ACCESS_TOKEN = "token"
    run()
    assert not Template.objects.exists()

"""Template sync from the WhatsApp account, against the fake Graph API over HTTP."""

from unittest import mock

import pytest
from django.utils import translation

from chatbot import message_templates
from chatbot.models import Template
from chatbot.whatsapp import graph

pytestmark = pytest.mark.django_db

WABA = "102290129340398"


def meta_template(i, status="APPROVED", name=None):
    return {"id": str(9000 + i), "name": name or f"aviso_{i}", "language": "pt_BR", "status": status,
            "category": "UTILITY", "parameter_format": "POSITIONAL",
            "components": [{"type": "BODY", "text": f"Olá {{{{1}}}}, aviso {i}",
                            "example": {"body_text": [["Maria"]]}}]}


def test_sync_reads_every_page_and_stores_the_components(fake_graph):
    fake_graph.templates = [meta_template(i) for i in range(250)]

    assert message_templates.sync() == 250

    assert Template.objects.count() == 250
    pages = [r for r in fake_graph.requests if r.path.endswith("/message_templates")]
    assert len(pages) == 3
    first = Template.objects.get(name="aviso_0")
    assert (first.template_id, first.waba_id, first.language, first.status, first.category) == (
        "9000", WABA, "pt_BR", "APPROVED", "UTILITY")
    assert first.components[0]["text"] == "Olá {{1}}, aviso 0"
    assert first.parameter_format == "POSITIONAL"
    assert first.synced_at is not None


def test_sync_updates_rows_and_marks_templates_gone_at_meta(fake_graph):
    Template.objects.create(name="aviso_0", language="pt_BR", status="PENDING", waba_id=WABA)
    Template.objects.create(name="antigo", language="pt_BR", status="APPROVED", waba_id=WABA, template_id="1")
    other = Template.objects.create(name="outra_conta", language="en_US", status="APPROVED", waba_id="999")
    fake_graph.templates = [meta_template(0), {**meta_template(1, status="REJECTED"), "rejected_reason": "PROMOTIONAL"}]

    message_templates.sync(waba_id=WABA)

    updated = Template.objects.get(name="aviso_0")
    assert (updated.status, updated.template_id) == ("APPROVED", "9000")
    assert Template.objects.get(name="aviso_1").reason == "PROMOTIONAL"
    # Gone at Meta: kept, marked as Meta itself reports it.
    assert Template.objects.get(name="antigo").status == "DELETED"
    other.refresh_from_db()
    assert other.status == "APPROVED"  # another WhatsApp account's template is not ours to judge
    # Running it again changes nothing.
    message_templates.sync(waba_id=WABA)
    assert Template.objects.count() == 4


def test_a_template_created_again_takes_over_its_row_by_name(fake_graph):
    Template.objects.create(name="boas_vindas", language="pt_BR", template_id="1", status="DELETED", waba_id=WABA)
    fake_graph.templates = [meta_template(5, name="boas_vindas")]

    message_templates.sync()

    template = Template.objects.get()
    assert (template.template_id, template.status) == ("9005", "APPROVED")


def test_a_failure_halfway_changes_nothing(fake_graph):
    Template.objects.create(name="antigo", language="pt_BR", status="APPROVED", waba_id=WABA)

    def broken(waba_id, page_size=100):
        yield meta_template(0)
        raise graph.GraphError("connection to Meta failed", retry=True)

    with mock.patch("chatbot.whatsapp.graph.list_templates", broken), pytest.raises(message_templates.SyncError):
        message_templates.sync()

    assert list(Template.objects.values_list("name", "status")) == [("antigo", "APPROVED")]


def test_a_refused_token_is_one_clear_error(fake_graph):
    fake_graph.fail_next(code=190, http_status=401, path_contains="message_templates")
    with translation.override("en"), pytest.raises(message_templates.SyncError, match="access token expired"):
        message_templates.sync()


def test_sandbox_and_missing_account_are_refused(settings):
    settings.WHATSAPP_ACCESS_TOKEN = ""
    with translation.override("en"), pytest.raises(message_templates.SyncError, match="Sandbox"):
        message_templates.sync()
    settings.WHATSAPP_ACCESS_TOKEN = "x" * 20
    settings.WHATSAPP_BUSINESS_ACCOUNT_ID = ""
    with pytest.raises(message_templates.SyncError, match="WHATSAPP_BUSINESS_ACCOUNT_ID"):
        message_templates.sync()


def test_progress_sees_every_template(fake_graph):
    fake_graph.templates = [meta_template(i) for i in range(3)]
    seen = []

    def progress(iterable, total, label):
        for item in iterable:
            seen.append((item["name"], total))
            yield item

    message_templates.sync(progress=progress)
    assert seen == [("aviso_0", 3), ("aviso_1", 3), ("aviso_2", 3)]



def test_positional_placeholders_are_in_metas_order_not_the_texts():
    template = Template(name="t", language="pt_BR", components=[
        {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}"},
        {"type": "BODY", "text": "Olá {{2}}, seu pedido {{1}} sai {{2}}"}])
    assert message_templates.placeholders(template) == [("header", "1"), ("body", "1"), ("body", "2")]


def test_named_placeholders_keep_the_texts_order():
    template = Template(name="t", language="pt_BR", parameter_format="NAMED",
                        components=[{"type": "BODY", "text": "{{nome}} e {{pedido}}"}])
    assert message_templates.placeholders(template) == [("body", "nome"), ("body", "pedido")]


def test_odd_components_are_skipped():
    assert message_templates.placeholders(Template(components={"type": "BODY"})) == []
    assert message_templates.placeholders(Template(components=["BODY", {"type": "BODY", "text": "{{1}}"}])) == [
        ("body", "1")]

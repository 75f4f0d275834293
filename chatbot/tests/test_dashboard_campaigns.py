"""The campaign pages (chatbot/dashboard/campaigns.py, campaign_forms.py) through Django's client:
the list, the wizard with its review and refusals, the report with its notices, costs and chart,
the actions, the per-recipient CSV, the live endpoint, and who may do what."""

import csv
import io
from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from chatbot import campaign_sending, campaigns, outbox
from chatbot.models import (
    BotSettings,
    Campaign,
    Contact,
    ContactAttribute,
    Department,
    Label,
    Message,
    PhoneNumber,
    Recipient,
    Template,
)
from chatbot.tests.helpers import customers

pytestmark = pytest.mark.django_db

PROMO = [
    {"type": "HEADER", "format": "IMAGE"},
    {"type": "BODY", "text": "Oi {{1}}! Seu cupom *{{2}}* vale até domingo."},
    {"type": "FOOTER", "text": "Loja Exemplo"},
    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Parar promoções"},
                                    {"type": "URL", "text": "Ver oferta", "url": "https://loja.example/o/{{1}}"}]},
]


@pytest.fixture
def promo():
    """The template with a footer and WhatsApp formatting, as the preview shows them."""
    return Template.objects.create(name="promo_semana", language="pt_BR", category="MARKETING", status="APPROVED",
                                   components=PROMO)


def url(name, *args):
    return reverse(f"chatbot:{name}", args=args)


def wizard(template, step="review", **changes):
    """The wizard's POST for `template`, as the form sends it."""
    pk = template.pk
    data = {"name": "Promoção de domingo", "template": str(pk), "audience": "labels", "labels": ["clientes"],
            "when": "now", "department": "", "step": step}
    if template.name == "promo_semana":
        data.update({f"var-{pk}-1": "{first_name|cliente}", f"var-{pk}-2": "{attr:cupom|BEMVINDO}",
                     f"header-{pk}": "https://loja.example/promo.jpg", f"button-{pk}-1": "{wa_id}"})
    else:
        data.update({f"var-{pk}-1": "{name|cliente}", f"var-{pk}-2": "{attr:pedido|em separação}"})
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def start(template, name="Promoção", audience=None, **options):
    content = {"variables": {"1": "{name|cliente}", "2": "123"}}
    if template.name == "promo_semana":
        content = {"variables": {"1": "{first_name|cliente}", "2": "X"}, "header": {"link": "https://l.example/a.jpg"},
                   "buttons": {"1": "{wa_id}"}}
    plan = campaigns.plan(template_name=template.name, language=template.language,
                          audience=audience or {"labels": ["clientes"]}, **content)
    return campaigns.create(name=name, plan=plan, **options)


def send_all():
    campaign_sending.wake()
    while outbox.drain():
        campaign_sending.wake()


def text(response):
    return response.content.decode()


# --- The list ----------------------------------------------------------------------------------


def test_the_empty_list_explains_campaigns_and_templates(as_operator):
    page = text(as_operator.get(url("dashboard-campaigns")))
    assert "Nenhuma campanha ainda" in page and "modelo aprovado pela Meta" in page
    assert "Criar a primeira campanha" not in page and url("dashboard-campaign-new") not in page
    assert "Administradores criam campanhas" in page
    assert '>Campanhas</a>' in page  # the navigation


def test_the_list_shows_newest_first_with_status_and_counts(as_owner, aviso):
    customers(3)
    first = start(aviso, name="Aviso de entrega")
    send_all()
    Message.objects.filter(recipient__campaign=first).update(status="delivered", delivered_at=timezone.now())
    later = timezone.now() + timedelta(days=2)
    second = start(aviso, name="Lembrete", scheduled_at=later)
    page = text(as_owner.get(url("dashboard-campaigns")))
    assert page.index("Lembrete") < page.index("Aviso de entrega")
    assert 'class="status campaign-scheduled">Agendada' in page and 'class="status campaign-finished">Concluída' in page
    assert f"agendada para {timezone.localtime(later):%d/%m/%Y %H:%M}" in page
    row = page[page.index(f'data-campaign="{first.pk}"'):]
    row = row[:row.index("</tr>")]
    assert 'value="100"' in row and row.count('class="num">3</td>') == 2  # sent and delivered
    assert url("dashboard-campaign-new") in page  # an administrator may create one
    assert second.pk != first.pk


# --- Permissions -------------------------------------------------------------------------------


def test_operators_read_but_only_administrators_create_and_stop(as_operator, aviso):
    customers(2)
    campaign = start(aviso)
    assert as_operator.get(url("dashboard-campaign-new")).status_code == 403
    assert as_operator.post(url("dashboard-campaign-new"), wizard(aviso, step="create")).status_code == 403
    for action in ("pause", "resume", "cancel"):
        assert as_operator.post(url("dashboard-campaign-action", campaign.pk, action)).status_code == 403
    page = as_operator.get(url("dashboard-campaign", campaign.pk))
    assert page.status_code == 200 and 'id="campaign-actions"' not in text(page)
    assert as_operator.get(url("dashboard-campaign-live", campaign.pk)).status_code == 200
    # Every customer's number and name: administrators only (an operator may be restricted to a department).
    assert as_operator.get(url("dashboard-campaign-csv", campaign.pk)).status_code == 403
    assert Campaign.objects.get().status == "running" and Campaign.objects.count() == 1


def test_people_outside_the_team_are_refused(client, django_user_model, aviso):
    customers(1)
    campaign = start(aviso)
    assert client.get(url("dashboard-campaigns")).status_code == 302  # to the login page
    client.force_login(django_user_model.objects.create_user("estranho", password="x"))
    assert client.get(url("dashboard-campaigns")).status_code == 403
    assert client.get(url("dashboard-campaign", campaign.pk)).status_code == 403


# --- The wizard ----------------------------------------------------------------------------------


def test_without_an_approved_template_the_wizard_says_how_to_sync(as_owner):
    Template.objects.create(name="rascunho", language="pt_BR", category="MARKETING", status="PENDING",
                            components=[{"type": "BODY", "text": "Oi"}])
    page = text(as_owner.get(url("dashboard-campaign-new")))
    assert "Nenhum modelo aprovado foi sincronizado" in page and "Sincronizar agora" in page
    assert "rascunho" not in page and url("dashboard-templates") in page


def test_the_form_has_a_field_per_placeholder_media_header_and_link_button(as_owner, promo, aviso):
    ContactAttribute.objects.create(key="pedido", name="Pedido")
    Label.objects.create(name="vip")
    Department.objects.create(name="Vendas")
    page = text(as_owner.get(url("dashboard-campaign-new")))
    for name in (f"var-{promo.pk}-1", f"var-{promo.pk}-2", f"header-{promo.pk}", f"button-{promo.pk}-1",
                 f"var-{aviso.pk}-1", f"var-{aviso.pk}-2", "attr-pedido"):
        assert f'name="{name}"' in page
    assert f'name="button-{promo.pk}-0"' not in page  # the quick reply has no suffix
    assert f'name="header-{aviso.pk}"' not in page
    assert "<code>{name|cliente}</code>" in page and "<code>{attr:pedido}</code>" in page
    assert 'value="vip"' in page and ">Vendas</option>" in page and "America/Sao_Paulo" in page


def test_the_review_counts_the_recipients_and_previews_the_first_message(as_owner, promo):
    ana, opted_out, blocked, _bia = customers(4)
    Contact.objects.filter(pk=ana.pk).update(name="Ana Souza", attributes={"cupom": "ANA10"})
    Contact.objects.filter(pk=opted_out.pk).update(opted_out=True)
    Contact.objects.filter(pk=blocked.pk).update(blocked=True)
    response = as_owner.post(url("dashboard-campaign-new"), wizard(promo))
    page = text(response)
    assert response.status_code == 200 and Campaign.objects.count() == 0
    assert "<strong>2</strong> contatos vão recebê-la" in page
    assert "1 contato pediu para não receber mensagens de marketing" in page
    assert "1 contato está bloqueado" in page
    assert "O que Ana Souza, o primeiro contato, vai receber" in page
    assert "Oi Ana! Seu cupom <strong>ANA10</strong> vale até domingo." in page
    assert "https://loja.example/promo.jpg" in page and "Loja Exemplo" in page
    assert f"Ver oferta <span class=\"muted small\">→ https://loja.example/o/{ana.wa_id}</span>" in page
    assert 'name="step" value="create"' in page
    # Everything typed goes along, hidden, to the confirmation.
    assert f'<input type="hidden" name="var-{promo.pk}-2" value="{{attr:cupom|BEMVINDO}}">' in page


def test_creating_goes_to_the_report(as_owner, owner, aviso):
    customers(2)
    vendas = Department.objects.create(name="Vendas")
    later = (timezone.localtime() + timedelta(days=1)).replace(hour=9, minute=30, second=0, microsecond=0)
    response = as_owner.post(url("dashboard-campaign-new"), wizard(
        aviso, step="create", when="later", scheduled_at=later.strftime("%Y-%m-%dT%H:%M"), department=str(vendas.pk),
        window_start="08:00", window_end="20:00"))
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == url("dashboard-campaign", campaign.pk)
    assert (campaign.name, campaign.status, campaign.recipients) == ("Promoção de domingo", "scheduled", 2)
    assert campaign.scheduled_at == later and campaign.department == vendas and campaign.created_by == owner
    assert (campaign.window_start, campaign.window_end) == (time(8), time(20))
    assert campaign.variables == {"1": "{name|cliente}", "2": "{attr:pedido|em separação}"}
    page = text(as_owner.get(response["Location"]))
    assert "Campanha criada." in page and f"Agendada para {later:%d/%m/%Y %H:%M} (America/Sao_Paulo)." in page
    assert "das 08:00 às 20:00 (America/Sao_Paulo)" in page and "Vendas" in page


def test_edit_brings_back_what_was_typed_without_errors(as_owner, aviso):
    customers(1)
    page = text(as_owner.post(url("dashboard-campaign-new"), wizard(aviso, step="edit", name="Rascunho")))
    assert 'value="Rascunho"' in page and 'value="{attr:pedido|em separação}"' in page and "errorlist" not in page
    assert f'<option value="{aviso.pk}" selected>' in page


@pytest.mark.parametrize("changes, field, message", [
    ({"name": ""}, "name", "Este campo é obrigatório."),
    ({"labels": None}, "labels", "Marque pelo menos uma etiqueta, ou escolha todos os contatos."),
    ({"when": "later", "scheduled_at": ""}, "scheduled_at", "Escolha a data e a hora, ou envie agora."),
    ({"when": "later", "scheduled_at": "2020-01-01T10:00"}, "scheduled_at", "Esse horário já passou"),
    ({"window_start": "08:00"}, "window_end", "Uma janela de envio precisa de início"),
    ({"var-{pk}-1": "{nome}"}, "var-{pk}-1", "{{1}}: {nome} não existe; use {name}"),
    ({"var-{pk}-2": " "}, "var-{pk}-2", "{{2}} precisa de um valor, por exemplo {name|cliente}."),
    ({"header-{pk}": ""}, "header-{pk}", "O cabeçalho do modelo é um(a) image"),
    ({"button-{pk}-1": ""}, "button-{pk}-1", "Final do link do botão 2 precisa de um valor"),
])
def test_each_refusal_is_shown_beside_its_field_and_the_input_is_kept(as_owner, promo, changes, field, message):
    customers(2)
    changes = {key.format(pk=promo.pk): value for key, value in changes.items()}
    data = wizard(promo, **changes)
    response = as_owner.post(url("dashboard-campaign-new"), data)
    page = text(response)
    assert response.status_code == 200 and 'name="step" value="create"' not in page
    field = field.format(pk=promo.pk)
    error = page[page.index(f'id="id_{field}_error"'):]
    assert message in error[:error.index("</ul>")]
    assert f'aria-describedby="id_{field}_error' in page
    for name, value in data.items():  # everything typed is still there
        if name not in ("step", "labels") and isinstance(value, str) and value.strip():
            assert f'value="{value}"' in page, name
    assert Campaign.objects.count() == 0


def test_an_audience_no_one_can_receive_offers_no_creation(as_owner, aviso):
    ContactAttribute.objects.create(key="cidade", name="Cidade")
    customers(2, attributes={"cidade": "Recife"})
    page = text(as_owner.post(url("dashboard-campaign-new"), wizard(aviso, **{"attr-cidade": "Manaus"})))
    assert "<strong>0</strong> contatos vão recebê-la" in page
    assert "Nenhum contato corresponde a este público: volte e mude-o." in page and 'value="create"' not in page
    page = text(as_owner.post(url("dashboard-campaign-new"), wizard(aviso, step="create", **{"attr-cidade": "Manaus"})))
    assert "Nenhum contato corresponde a este público." in page and Campaign.objects.count() == 0
    # Everyone skipped: the reasons, in words.
    page = text(as_owner.post(url("dashboard-campaign-new"), wizard(aviso, step="create", **{
        f"var-{aviso.pk}-2": "{attr:pedido}"})))
    assert ("Ninguém deste público pode recebê-la: 2 contatos não têm valor para uma variável sem valor "
            "padrão.") in page


def test_everyone_with_filters_and_opt_in(as_owner, aviso):
    recent, old, _no_opt_in = customers(3, label="outros")
    Contact.objects.filter(pk__in=[recent.pk, old.pk]).update(opted_in_at=timezone.now())
    Contact.objects.filter(pk=recent.pk).update(last_inbound_at=timezone.now() - timedelta(days=2))
    Contact.objects.filter(pk=old.pk).update(last_inbound_at=timezone.now() - timedelta(days=40))
    data = wizard(aviso, audience="everyone", labels=None, last_contact_days="30", require_opt_in="on")
    page = text(as_owner.post(url("dashboard-campaign-new"), data))
    assert "<strong>1</strong> contato vai recebê-la" in page and recent.name in page
    as_owner.post(url("dashboard-campaign-new"), {**data, "step": "create"})
    assert Campaign.objects.get().audience == {"everyone": True, "last_contact_days": 30, "require_opt_in": True}


# --- The report, the actions and the live figures -----------------------------------------------------


def test_the_report_follows_the_sending(as_owner, aviso, settings):
    made = customers(4)
    Contact.objects.filter(pk=made[3].pk).update(blocked=True)
    campaign = start(aviso, name="Entregas")
    send_all()
    messages_ = list(Message.objects.filter(recipient__campaign=campaign).order_by("pk"))
    now = timezone.now()
    Message.objects.filter(pk__in=[m.pk for m in messages_[:2]]).update(
        status="read", delivered_at=now, read_at=now, pricing_category="utility")
    Message.objects.filter(pk=messages_[2].pk).update(status="failed", error_code=131026, failed_at=now)
    Recipient.objects.filter(message=messages_[0]).update(replied_at=now)
    BotSettings.objects.filter(pk=BotSettings.load().pk).update(price_utility=Decimal("1234.5"))
    page = text(as_owner.get(url("dashboard-campaign", campaign.pk)))
    assert 'value="100"' in page and "100% concluído: 4 de 4 contatos" in page
    figures = {key: page[page.index(f'data-figure="{key}"'):].split("<strong>")[1].split("</strong>")[0]
               for key in ("queued", "sent", "delivered", "read", "failed", "replied", "opted_out", "skipped")}
    assert figures == {"queued": "0", "sent": "2", "delivered": "2", "read": "2", "failed": "1", "replied": "1",
                       "opted_out": "0", "skipped": "1"}
    assert "1 contato está bloqueado" in page
    assert ">131026</th>" in page and "WhatsApp" in page  # the code's plain explanation
    assert "R$ 2.469,00" in page and "R$ 1.234,5000" in page and "Utilidade" in page
    assert "uma estimativa, não a fatura da Meta".lower() in page.lower()
    assert page.count("<rect ") == 1 and f">{timezone.localtime(now):%H:%M}</th>" in page
    assert 'data-live="' in page  # finished a moment ago: Meta's statuses still come in
    Campaign.objects.filter(pk=campaign.pk).update(finished_at=timezone.now() - timedelta(hours=2))
    assert 'data-live="' not in text(as_owner.get(url("dashboard-campaign", campaign.pk)))  # settled: no poll


def test_pause_resume_and_cancel_from_the_report(as_owner, aviso):
    customers(3)
    campaign = start(aviso, scheduled_at=timezone.now() + timedelta(hours=1))
    report = url("dashboard-campaign", campaign.pk)
    page = text(as_owner.get(report))
    assert f'data-live="{url("dashboard-campaign-live", campaign.pk)}"' in page
    assert 'data-action="resume" hidden' in page and 'data-action="pause">' in page

    response = as_owner.post(url("dashboard-campaign-action", campaign.pk, "pause"))
    assert response.status_code == 302 and response["Location"] == report
    page = text(as_owner.get(report))
    assert "Campanha pausada" in page and "Pausada por alguém da equipe" in page
    assert 'data-action="pause" hidden' in page and 'data-action="resume">' in page

    as_owner.post(url("dashboard-campaign-action", campaign.pk, "resume"))
    assert Campaign.objects.get().status == "scheduled"
    assert as_owner.get(url("dashboard-campaign-action", campaign.pk, "resume")).status_code == 405
    # Resuming a campaign that is not paused (another tab did): said plainly, nothing changes.
    response = as_owner.post(url("dashboard-campaign-action", campaign.pk, "resume"), follow=True)
    assert "Só uma campanha pausada pode ser retomada; esta está agendada." in text(response)
    assert Campaign.objects.get().status == "scheduled"

    assert as_owner.post(url("dashboard-campaign-action", campaign.pk, "explode")).status_code == 404
    response = as_owner.post(url("dashboard-campaign-action", campaign.pk, "cancel"), follow=True)
    assert "Campanha cancelada" in text(response) and 'data-live="' not in text(response)
    assert 'id="action-cancel"' in text(response) and 'data-action="cancel" hidden' in text(response)
    assert Campaign.objects.get().status == "cancelled"
    assert set(Recipient.objects.values_list("state", flat=True)) == {"cancelled"}


def test_a_paused_campaign_says_why_in_plain_words(as_operator, aviso):
    customers(2)
    campaign = start(aviso)
    campaigns.pause(campaign.pk, reason=Campaign.PauseReason.QUALITY, detail="A Meta classificou como RED.")
    page = text(as_operator.get(url("dashboard-campaign", campaign.pk)))
    assert "Pausada automaticamente: a Meta baixou a classificação de qualidade" in page
    assert "Detalhe: A Meta classificou como RED." in page
    assert "Retomar o envio" not in page  # an operator does not get the buttons


def test_waiting_notices_window_and_messaging_limit(as_operator, aviso):
    customers(2)
    local = timezone.localtime()
    opens = (local + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    closes = (local + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    campaign = start(aviso, window=(opens.time(), closes.time()))
    page = text(as_operator.get(url("dashboard-campaign", campaign.pk)))
    expected = f"às {opens:%H:%M}" if opens.date() == local.date() else f"em {opens:%d/%m/%Y} às {opens:%H:%M}"
    assert f"Fora da janela diária de envio: o envio recomeça {expected}." in page

    Campaign.objects.filter(pk=campaign.pk).update(window_start=None, window_end=None)
    PhoneNumber.objects.filter(pk=campaign.phone_number_id).update(messaging_limit="TIER_50")
    other = Campaign.objects.create(name="antiga", phone_number=campaign.phone_number, template_name="aviso",
                                    template_language="pt_BR", scheduled_at=timezone.now(), status="finished")
    sent_at = timezone.now() - timedelta(hours=1)
    Recipient.objects.bulk_create([Recipient(campaign=other, contact=Contact.objects.create(wa_id=f"55219{i:08d}"),
                                             state="queued", queued_at=sent_at) for i in range(50)])
    page = text(as_operator.get(url("dashboard-campaign", campaign.pk)))
    frees = timezone.localtime(sent_at + timedelta(hours=24))
    assert ("Aguardando o limite de mensagens da Meta (50 clientes em 24 horas): o envio continua "
            f"em {frees:%d/%m/%Y} às {frees:%H:%M}.") in page


def test_the_live_endpoint_follows_a_pause_from_elsewhere(as_operator, aviso):
    customers(2)
    campaign = start(aviso)
    live = as_operator.get(url("dashboard-campaign-live", campaign.pk)).json()
    assert (live["status"], live["status_label"], live["active"], live["actions"]) == (
        "running", "Enviando", True, ["pause", "cancel"])
    assert 'data-figure="queued"><span class="caption">Aguardando envio</span> <strong>2</strong>' in live["html"]
    campaigns.pause(campaign.pk)
    live = as_operator.get(url("dashboard-campaign-live", campaign.pk)).json()
    assert live["actions"] == ["resume", "cancel"] and "Pausada por alguém da equipe" in live["status_html"]
    campaigns.cancel(campaign.pk)
    live = as_operator.get(url("dashboard-campaign-live", campaign.pk)).json()
    assert (live["status"], live["active"], live["actions"]) == ("cancelled", False, [])
    assert "csrfmiddlewaretoken" not in live["html"] + live["status_html"]  # the same HTML until figures change
    assert as_operator.get(url("dashboard-campaign-live", 999)).status_code == 404


# --- The CSV -------------------------------------------------------------------------------------


def test_the_recipients_csv_is_written_as_the_reports_are(as_owner, aviso):
    fine, blocked, formula = customers(3)
    Contact.objects.filter(pk=blocked.pk).update(blocked=True, name="Zé; \"o bloqueado\"")
    Contact.objects.filter(pk=formula.pk).update(name='=HYPERLINK("http://evil.example/")')
    campaign = start(aviso)
    send_all()
    response = as_owner.get(url("dashboard-campaign-csv", campaign.pk))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="campanha-{campaign.pk}-destinatarios.csv"'
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeffwa_id;name;status;error_code;sent_at;delivered_at;read_at;replied_at\r\n")
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff")), delimiter=";"))
    assert rows[3][1] == "'=HYPERLINK(\"http://evil.example/\")"  # a formula is shown, never run
    assert rows[1][:4] == [fine.wa_id, fine.name, "sent", ""] and rows[1][4]
    assert rows[2][:3] == [blocked.wa_id, 'Zé; "o bloqueado"', "skipped:blocked"]
    as_owner.cookies["django_language"] = "en"
    body = b"".join(as_owner.get(url("dashboard-campaign-csv", campaign.pk)).streaming_content).decode()
    assert body.startswith("\ufeffwa_id,name,status,error_code,sent_at,delivered_at,read_at,replied_at\r\n")


# --- The price table -------------------------------------------------------------------------------


def test_the_price_table_is_in_the_business_settings(as_owner):
    page = text(as_owner.get(url("dashboard-settings-bot")))
    assert "<legend>Campanhas</legend>" in page and "estimativa de custo das campanhas" in page
    for name in ("price_marketing", "price_utility", "price_authentication"):
        assert f'name="{name}"' in page


def test_the_template_fields_are_checked_with_the_other_answers(as_owner, promo):
    customers(1)
    page = text(as_owner.post(url("dashboard-campaign-new"), wizard(promo, name="", **{f"var-{promo.pk}-2": ""})))
    assert 'id="id_name_error"' in page and f'id="id_var-{promo.pk}-2_error"' in page
    assert "{{2}} precisa de um valor" in page and Campaign.objects.count() == 0


def test_a_long_campaign_charts_deliveries_by_the_hour_with_its_gaps(as_operator, aviso):
    customers(3)
    campaign = start(aviso)
    send_all()
    now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(started_at=now - timedelta(hours=5))
    first, second, third = Message.objects.filter(recipient__campaign=campaign).order_by("pk")
    for message, hours in ((first, 4), (second, 4), (third, 2)):
        Message.objects.filter(pk=message.pk).update(status="delivered", delivered_at=now - timedelta(hours=hours))
    page = text(as_operator.get(url("dashboard-campaign", campaign.pk)))
    assert page.count("<rect ") == 3  # 2 delivered, none the hour after, 1
    assert "Entregues por hora" in page
    hour = timezone.localtime(now - timedelta(hours=4)).replace(minute=0)
    assert f'<th scope="row">{hour:%d/%m/%Y %H}:00</th><td class="num">2</td>' in page
    table = page[page.index('id="timeline-table"'):page.index("</table>", page.index('id="timeline-table"'))]
    assert table.count("<tr>") == 3  # the heading and the two hours with deliveries


def test_an_opt_in_required_by_the_settings_is_shown_and_kept(as_owner, aviso):
    with_opt_in, _without = customers(2)
    Contact.objects.filter(pk=with_opt_in.pk).update(opted_in_at=timezone.now())
    BotSettings.objects.filter(pk=BotSettings.load().pk).update(campaigns_require_opt_in=True)
    page = text(as_owner.get(url("dashboard-campaign-new")))
    start = page.rindex("<input", 0, page.index('id="id_require_opt_in"'))
    box = page[start:page.index(">", start)]
    assert " disabled" in box and " checked" in box
    assert "Toda campanha exige isso" in page
    page = text(as_owner.post(url("dashboard-campaign-new"), wizard(aviso)))
    assert "<strong>1</strong> contato vai recebê-la" in page
    assert "1 contato não tem consentimento (opt-in) registrado" in page

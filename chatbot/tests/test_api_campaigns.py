"""The campaigns API (design.md, "Campaigns API"): creating one (201 and its counts, 400 with the
field at fault and nothing stored), listing and reading them, pause / resume / cancel (200, 409,
404), the per-recipient CSV, and the token's `campaigns` scope."""

import csv
import io
import json
import re
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from chatbot import outbox
from chatbot.models import ApiToken, Campaign, Contact, Department, Label, Message, Recipient, Template
from chatbot.tests.helpers import customers

pytestmark = pytest.mark.django_db

CONTRACT_KEYS = {"id", "name", "status", "recipients", "counts", "failures", "created_at", "started_at",
                 "finished_at"}
COUNT_KEYS = {"queued", "sent", "delivered", "read", "failed", "replied", "skipped"}


@pytest.fixture
def token():
    return ApiToken.objects.create_token("crm", scopes=["campaigns"])[1]


def body(**changes):
    """A create request for the `aviso` template to the label `clientes`, with `changes`."""
    return {"name": "Pedidos de novembro", "template": {"name": "aviso", "language": "pt_BR"},
            "audience": {"labels": ["clientes"]}, "variables": {"1": "{first_name|cliente}", "2": "{attr:pedido|-}"},
            **changes}


def post(client, token, data, url="/chatbot/api/campaigns/"):
    raw = data if isinstance(data, bytes) else json.dumps(data)
    return client.post(url, raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def get(client, token, url):
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def send_all():
    while outbox.drain():
        pass


# --- Creating ---


def test_a_campaign_is_created_with_201_and_who_was_skipped(client, token, promo, settings):
    settings.BULK_MESSAGE_DELAY = 250
    fine, opted_out, blocked = customers(3)
    Contact.objects.filter(pk=opted_out.pk).update(opted_out=True)
    Contact.objects.filter(pk=blocked.pk).update(blocked=True)
    response = post(client, token, {
        "name": "Black Friday", "template": {"name": "promo_semana", "language": "pt_BR"},
        "audience": {"labels": ["clientes"], "wa_ids": ["11 98888-7777", "123"]},
        "variables": {"1": "{first_name|cliente}", "2": "BF10"}, "header": {"link": "https://loja.example/bf.jpg"},
        "buttons": {"1": "{wa_id}"}})
    assert response.status_code == 201
    campaign = Campaign.objects.get()
    assert response.json() == {"id": campaign.pk, "status": "running", "recipients": 2, "skipped": {
        "opted_out": 1, "blocked": 1, "invalid": 1, "no_opt_in": 0, "incomplete": 0}}
    assert (campaign.name, campaign.template_name, campaign.template_language) == ("Black Friday", "promo_semana",
                                                                                   "pt_BR")
    assert campaign.api_token == ApiToken.objects.get() and campaign.delay_ms == 250
    assert campaign.phone_number.phone_number_id == "106540352242922"
    assert campaign.header == {"type": "image", "image": {"link": "https://loja.example/bf.jpg"}}
    states = dict(Recipient.objects.filter(campaign=campaign).values_list("contact__wa_id", "state"))
    assert states == {fine.wa_id: "pending", opted_out.wa_id: "skipped", blocked.wa_id: "skipped",
                      "5511988887777": "pending"}


def test_the_campaign_goes_out_with_each_contacts_values(client, token, aviso, fake_graph):
    ana, bia = customers(2)
    Contact.objects.filter(pk=ana.pk).update(name="Ana Souza", attributes={"pedido": "A-17"})
    campaign_id = post(client, token, body()).json()["id"]
    send_all()
    parameters = {sent["to"]: sent["template"]["components"][0]["parameters"] for sent in fake_graph.sent()}
    assert parameters == {
        f"+{ana.wa_id}": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-17"}],
        f"+{bia.wa_id}": [{"type": "text", "text": "Cliente"}, {"type": "text", "text": "-"}]}
    document = get(client, token, f"/chatbot/api/campaigns/{campaign_id}/").json()
    assert document["status"] == "finished" and document["finished_at"] is not None
    assert document["counts"] == {"queued": 0, "sent": 2, "delivered": 0, "read": 0, "failed": 0, "replied": 0,
                                  "skipped": 0}


def test_metas_template_components_are_read_as_the_parameters(client, token, promo):
    customers(1)
    response = post(client, token, {
        "name": "Componentes", "audience": {"labels": ["clientes"]},
        "template": {"name": "promo_semana", "language": {"code": "pt_BR"}, "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://loja.example/a.jpg"}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "{name}"}, {"type": "text", "text": "X1"}]},
            {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "{wa_id}"}]},
        ]}})
    assert response.status_code == 201, response.json()
    campaign = Campaign.objects.get()
    assert (campaign.variables, campaign.buttons) == ({"1": "{name}", "2": "X1"}, {"1": "{wa_id}"})
    assert campaign.header == {"type": "image", "image": {"link": "https://loja.example/a.jpg"}}


def test_the_optional_settings_are_stored(client, token, aviso):
    customers(2)
    vendas = Department.objects.create(name="Vendas")
    Contact.objects.filter(wa_id="5511900000000").update(opted_in_at=timezone.now())
    response = post(client, token, body(window={"start": "08:00", "end": "20:00"}, department="Vendas",
                                        audience={"labels": ["clientes"], "require_opt_in": True}))
    assert response.status_code == 201
    assert response.json()["skipped"]["no_opt_in"] == 1
    campaign = Campaign.objects.get()
    assert (campaign.window_start.isoformat(), campaign.window_end.isoformat()) == ("08:00:00", "20:00:00")
    assert campaign.department == vendas


def test_scheduled_at_without_an_offset_is_in_the_business_time_zone(client, token, aviso, settings):
    assert settings.TIME_ZONE == "America/Sao_Paulo"
    customers(1)
    response = post(client, token, body(scheduled_at="2030-01-15T09:00:00"))
    assert response.status_code == 201 and response.json()["status"] == "scheduled"
    assert Campaign.objects.get().scheduled_at == datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
    assert post(client, token, body(scheduled_at="2030-01-15T09:00:00Z")).status_code == 201
    assert Campaign.objects.order_by("pk").last().scheduled_at == datetime(2030, 1, 15, 9, 0, tzinfo=UTC)
    assert not Message.objects.exists()


@pytest.mark.parametrize(("changes", "field"), [
    ({"template": {"name": "nao_existe", "language": "pt_BR"}}, "template.name"),
    ({"template": {"name": "rascunho", "language": "pt_BR"}}, "template.name"),  # not approved
    ({"template": {"language": "pt_BR"}}, "template.name"),
    ({"template": {"name": "aviso"}}, "template.language"),
    ({"variables": {"1": "{name}"}}, "variables"),
    ({"variables": {"1": "{name}", "2": "x", "3": "y"}}, "variables"),
    ({"variables": ["{name}", "x"]}, "variables"),
    ({"variables": {"1": "{idade}", "2": "x"}}, "variables.1"),
    ({"variables": {"1": "{name}", "2": 7}}, "variables.2"),
    ({"audience": {}}, "audience"),
    ({"audience": {"labels": ["ninguem"]}}, "audience"),  # a label with no contact
    ({"audience": {"labels": ["nao-existe"]}}, "audience.labels"),
    ({"audience": None}, "audience"),
    ({"name": ""}, "name"),
    ({"name": None}, "name"),
    ({"scheduled_at": "amanhã às 9"}, "scheduled_at"),
    ({"scheduled_at": 1764000000}, "scheduled_at"),
    ({"phone_number_id": "999"}, "phone_number_id"),
    ({"window": {"start": "8h"}}, "window"),
    ({"window": {"start": "08:00", "end": "08:00"}}, "window"),
    ({"department": "Inexistente"}, "department"),
    ({"template": {"name": "aviso", "language": "pt_BR", "components": [{"type": "body"}]}},
     "template.components[0]"),
])
def test_a_request_that_cannot_be_a_campaign_is_400_with_the_field_and_nothing_stored(client, token, aviso, changes,
                                                                                     field):
    Template.objects.create(name="rascunho", language="pt_BR", category="UTILITY", status="PENDING",
                            components=aviso.components)
    Label.objects.create(name="ninguem")
    customers(2)
    contacts_before = Contact.objects.count()
    response = post(client, token, {**body(audience={"labels": ["clientes"], "wa_ids": ["5521977776666"]}),
                                    **changes})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["field"] == field
    assert response.json()["error"]["message"]
    assert not Campaign.objects.exists() and not Recipient.objects.exists()
    assert Contact.objects.count() == contacts_before  # the listed new number was not kept


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'"x"', b"\xff"])
def test_a_body_that_is_no_json_object_is_400(client, token, raw):
    response = post(client, token, raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert not Campaign.objects.exists()


# --- Reading ---


def test_the_list_is_newest_first_with_the_contract_keys(client, token, aviso):
    customers(2)
    first = post(client, token, body(name="Primeira")).json()["id"]
    second = post(client, token, body(name="Segunda", scheduled_at="2030-01-01T10:00:00-03:00")).json()["id"]
    response = get(client, token, "/chatbot/api/campaigns/")
    assert response.status_code == 200
    listed = response.json()
    assert [(item["id"], item["name"], item["status"]) for item in listed] == [
        (second, "Segunda", "scheduled"), (first, "Primeira", "running")]
    for item in listed:
        assert set(item) >= CONTRACT_KEYS and set(item["counts"]) == COUNT_KEYS
    assert [item["id"] for item in get(client, token, "/chatbot/api/campaigns/?status=scheduled").json()] == [second]
    assert [item["id"] for item in get(client, token, "/chatbot/api/campaigns/?limit=1").json()] == [second]
    assert get(client, token, "/chatbot/api/campaigns/?limit=0").json()["error"]["field"] == "limit"
    assert get(client, token, "/chatbot/api/campaigns/?status=done").json()["error"]["field"] == "status"


def test_a_campaign_object(client, token, aviso):
    customers(3)
    Contact.objects.filter(wa_id="5511900000002").update(blocked=True)
    campaign_id = post(client, token, body(scheduled_at="2030-01-15T09:00:00")).json()["id"]
    response = get(client, token, f"/chatbot/api/campaigns/{campaign_id}/")
    assert response.status_code == 200
    document = response.json()
    campaign = Campaign.objects.get()
    assert {key: document[key] for key in CONTRACT_KEYS} == {
        "id": campaign_id, "name": "Pedidos de novembro", "status": "scheduled", "recipients": 2,
        "counts": {"queued": 2, "sent": 0, "delivered": 0, "read": 0, "failed": 0, "replied": 0, "skipped": 1},
        "failures": {}, "created_at": campaign.created_at.isoformat(), "started_at": None, "finished_at": None}
    assert document["scheduled_at"] == "2030-01-15T12:00:00+00:00"
    assert document["template"] == {"name": "aviso", "language": "pt_BR", "category": "UTILITY"}
    assert (document["pause_reason"], document["progress"]) == (None, 33)


def test_failures_are_counted_by_metas_code(client, token, aviso, fake_graph):
    customers(3)
    fake_graph.fail_next(131026, times=2)
    campaign_id = post(client, token, body()).json()["id"]
    send_all()
    document = get(client, token, f"/chatbot/api/campaigns/{campaign_id}/").json()
    assert document["failures"] == {"131026": 2}
    assert (document["counts"]["failed"], document["counts"]["sent"]) == (2, 1)


def test_an_unknown_campaign_is_404(client, token):
    for url in ("/chatbot/api/campaigns/999/", "/chatbot/api/campaigns/999/recipients.csv"):
        response = get(client, token, url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    for move in ("pause", "resume", "cancel"):
        assert post(client, token, b"", url=f"/chatbot/api/campaigns/999/{move}").status_code == 404


# --- Pause, resume, cancel ---


@pytest.mark.parametrize("slash", ["", "/"])
def test_pause_resume_and_cancel_answer_the_campaign(client, token, aviso, slash):
    customers(2)
    campaign_id = post(client, token, body(scheduled_at="2030-01-15T09:00:00")).json()["id"]
    base = f"/chatbot/api/campaigns/{campaign_id}"
    paused = post(client, token, b"", url=f"{base}/pause{slash}")
    assert paused.status_code == 200
    assert (paused.json()["id"], paused.json()["status"], paused.json()["pause_reason"]) == (campaign_id, "paused",
                                                                                           "manual")
    assert Campaign.objects.get().status == "paused"
    resumed = post(client, token, b"", url=f"{base}/resume{slash}")
    assert resumed.status_code == 200 and resumed.json()["status"] == "scheduled"
    cancelled = post(client, token, b"", url=f"{base}/cancel{slash}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"] is not None
    assert set(Recipient.objects.values_list("state", flat=True)) == {"cancelled"}


def test_an_impossible_move_is_409_and_changes_nothing(client, token, aviso):
    customers(1)
    campaign_id = post(client, token, body()).json()["id"]
    base = f"/chatbot/api/campaigns/{campaign_id}"
    response = post(client, token, b"", url=f"{base}/resume")  # it is running
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    assert post(client, token, b"", url=f"{base}/cancel").status_code == 200
    for move in ("pause", "resume", "cancel"):
        assert post(client, token, b"", url=f"{base}/{move}").status_code == 409
    assert Campaign.objects.get().status == "cancelled"
    assert post(client, token, b"", url=f"{base}/restart").status_code == 404


# --- The recipients' CSV ---


def test_the_recipients_csv(client, token, aviso, fake_graph):
    ana, bia, caio = customers(3)
    Contact.objects.filter(pk=bia.pk).update(name="=HYPERLINK(\"http://x\")")
    Contact.objects.filter(pk=caio.pk).update(blocked=True)
    campaign_id = post(client, token, body(name="CSV")).json()["id"]
    send_all()
    Message.objects.filter(contact=ana).update(status="read", delivered_at=timezone.now(), read_at=timezone.now())
    Message.objects.filter(contact=bia).update(status="failed", sent_at=None, error_code=131026)
    response = get(client, token, f"/chatbot/api/campaigns/{campaign_id}/recipients.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    assert text.startswith("wa_id,name,status,error_code,sent_at,delivered_at,read_at,replied_at\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 4
    messages = {message.contact_id: message for message in Message.objects.all()}
    sent = messages[ana.pk]
    assert rows[1] == [ana.wa_id, "Cliente 0", "read", "", sent.sent_at.isoformat(), sent.delivered_at.isoformat(),
                       sent.read_at.isoformat(), ""]
    assert rows[2] == [bia.wa_id, "'=HYPERLINK(\"http://x\")", "failed", "131026", "", "", "", ""]
    assert rows[3] == [caio.wa_id, "Cliente 2", "skipped:blocked", "", "", "", "", ""]


# --- Tokens ---


def test_the_campaigns_api_needs_a_token_with_the_campaigns_scope(client, aviso):
    customers(1)
    sender = ApiToken.objects.create_token("erp", scopes=["send", "read", "export"])[1]
    calls = [("post", "/chatbot/api/campaigns/"), ("get", "/chatbot/api/campaigns/"),
             ("get", "/chatbot/api/campaigns/1/"), ("post", "/chatbot/api/campaigns/1/pause"),
             ("post", "/chatbot/api/campaigns/1/resume/"), ("post", "/chatbot/api/campaigns/1/cancel"),
             ("get", "/chatbot/api/campaigns/1/recipients.csv")]
    for method, url in calls:
        call = getattr(client, method)
        data = {"data": json.dumps(body()), "content_type": "application/json"} if method == "post" else {}
        anonymous = call(url, **data)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized", url
        forbidden = call(url, HTTP_AUTHORIZATION=f"Bearer {sender}", **data)
        assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden_scope", url
    assert not Campaign.objects.exists()


def test_a_wrong_method_is_405(client, token):
    response = client.put("/chatbot/api/campaigns/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert get(client, token, "/chatbot/api/campaigns/1/pause").status_code == 405


def test_a_repeat_with_the_same_idempotency_key_creates_nothing_more(client, token, aviso):
    customers(2)
    raw = json.dumps(body())
    first = client.post("/chatbot/api/campaigns/", raw, content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IDEMPOTENCY_KEY="bf-2025")
    again = client.post("/chatbot/api/campaigns/", raw, content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IDEMPOTENCY_KEY="bf-2025")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    assert Campaign.objects.count() == 1 and Recipient.objects.count() == 2
    other = client.post("/chatbot/api/campaigns/", json.dumps(body(name="Outra")), content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IDEMPOTENCY_KEY="bf-2025")
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"


# --- OpenAPI ---


def test_the_openapi_document_describes_the_campaigns_api(client):
    schema = client.get("/chatbot/api/schema/").json()
    paths = schema["paths"]
    assert set(paths["/api/campaigns/"]) == {"get", "post"}
    assert set(paths["/api/campaigns/"]["post"]["responses"]) >= {"201", "400", "401", "403"}
    for move in ("pause", "resume", "cancel"):
        assert set(paths[f"/api/campaigns/{{id}}/{move}"]["post"]["responses"]) >= {"200", "404", "409"}
    assert "text/csv" in paths["/api/campaigns/{id}/recipients.csv"]["get"]["responses"]["200"]["content"]
    campaign = schema["components"]["schemas"]["Campaign"]["properties"]
    assert set(campaign) >= CONTRACT_KEYS and set(campaign["counts"]["properties"]) == COUNT_KEYS
    created = schema["components"]["schemas"]["CampaignCreated"]["properties"]
    assert set(created["skipped"]["properties"]) >= {"opted_out", "blocked", "invalid"}
    # Every reference names a schema the document has.
    references = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(schema)))
    assert references <= set(schema["components"]["schemas"])


@pytest.mark.parametrize(("changes", "field"), [
    ({"window": {"start": "08:00+03:00", "end": "20:00+03:00"}}, "window"),
    ({"buttons": ["x"]}, "buttons"),
    ({"buttons": "abc"}, "buttons"),
    ({"audience": {"labels": ["clientes"], "last_contact_days": 100_000_000}}, "audience.last_contact_days"),
    ({"audience": {"attributes": {"pedido__regex": ".*"}}}, "audience.attributes"),
    ({"audience": {"attributes": {"pedido": {"$gt": 1}}}}, "audience.attributes"),
    ({"audience": {"wa_ids": ["11987654321"] * 100_001}}, "audience.wa_ids"),
])
def test_odd_input_is_a_400_naming_the_field_never_a_500(client, token, aviso, changes, field):
    customers(1)
    response = post(client, token, body(**changes))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field
    assert not Campaign.objects.exists()


def test_listed_numbers_are_found_and_created_in_a_few_queries(client, token, aviso,
                                                                django_assert_max_num_queries):
    customers(50)
    listed = [f"55119{index:08d}" for index in range(50)] + [f"55219{index:08d}" for index in range(2000)]
    # A few per thousand numbers (SQLite inserts some 50 rows a statement), not two per number.
    with django_assert_max_num_queries(150):
        response = post(client, token, body(audience={"wa_ids": listed}))
    assert response.status_code == 201 and response.json()["recipients"] == 2050
    assert Campaign.objects.get().audience["wa_ids"] == 2050  # a count: the numbers are recipient rows

"""The event-webhooks settings pages (dashboard/integrations.py): administrators add, test, disable
and remove endpoints and replay their deliveries there, against a real receiver on 127.0.0.1
(tests/receiver.py); nobody else may. And the overview's notice of an endpoint disabled after a
day of failures."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.messages import ERROR, SUCCESS, get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chatbot.dashboard import integrations
from chatbot.models import EventDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def url(name, *args):
    return reverse(f"chatbot:dashboard-settings-{name}", args=args)


def said(response):
    return [(message.level, message.message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def private_ok(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def make_endpoint(address="http://203.0.113.10/hooks", **fields):
    return WebhookEndpoint.objects.create(url=address, secret="whsec_test_secret_value", **fields)


def make_delivery(endpoint, status="failed", index=0, **fields):
    event_id = f"evt_{index:024x}"
    body = json.dumps({"id": event_id, "type": "message.received", "created_at": "2025-01-01T12:00:00+00:00",
                       "data": {"text": "Olá"}}, separators=(",", ":"))
    return EventDelivery.objects.create(endpoint=endpoint, event_id=event_id, type="message.received", body=body,
                                        status=status, **fields)


@pytest.fixture
def endpoint():
    return make_endpoint(description=XSS, events=["message.received"])


def pages(endpoint):
    return [url("endpoints"), url("endpoint-new"), url("endpoint", endpoint.pk), url("endpoint-edit", endpoint.pk),
            url("endpoint-delete", endpoint.pk)]


def posts(endpoint, delivery):
    return [url("endpoint-new"), url("endpoint-edit", endpoint.pk), url("endpoint-delete", endpoint.pk),
            url("delivery-replay", endpoint.pk, delivery.pk),
            *[url("endpoint-action", endpoint.pk, action) for action in integrations.ACTIONS]]


# --- Who may --------------------------------------------------------------------------------------


def test_anonymous_visitors_go_to_the_login_page(client, endpoint):
    for page in pages(endpoint):
        response = client.get(page)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), page


def test_operators_who_are_not_administrators_are_refused(as_operator, endpoint):
    delivery = make_delivery(endpoint)
    for page in pages(endpoint):
        assert as_operator.get(page).status_code == 403, page
    for page in posts(endpoint, delivery):
        assert as_operator.post(page, {"url": "https://example.com/x"}).status_code == 403, page
    endpoint.refresh_from_db()
    delivery.refresh_from_db()
    assert (WebhookEndpoint.objects.count(), endpoint.active, endpoint.secret) == (1, True, "whsec_test_secret_value")
    assert delivery.status == "failed"


def test_csrf_is_enforced(owner, endpoint):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(url("endpoint-action", endpoint.pk, "disable")).status_code == 403
    assert client.post(url("endpoint-delete", endpoint.pk)).status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.active


def test_every_page_renders_without_inline_style_or_script_and_escapes(as_owner, endpoint):
    make_delivery(endpoint, response_body=f"<img src=x onerror=alert(2)>{XSS}", error=XSS, response_status=500,
                  attempts=3)
    for page in pages(endpoint):
        response = as_owner.get(page)
        html = response.content.decode()
        assert response.status_code == 200, page
        assert "style=" not in html, page
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [], page
        assert XSS not in html and "<img src=x" not in html, page
    html = as_owner.get(url("endpoint", endpoint.pk)).content.decode()
    assert ESCAPED in html  # the description, the answer and the error, shown as text
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert ESCAPED in as_owner.get(url("endpoints")).content.decode()


def test_unknown_endpoints_deliveries_and_actions_are_404(as_owner, endpoint):
    other = make_endpoint("http://203.0.113.11/hooks")
    delivery = make_delivery(other)
    assert as_owner.get(url("endpoint", 999)).status_code == 404
    assert as_owner.post(url("endpoint-action", endpoint.pk, "explode")).status_code == 404
    # A delivery is replayed only through its own endpoint's page.
    assert as_owner.post(url("delivery-replay", endpoint.pk, delivery.pk)).status_code == 404
    delivery.refresh_from_db()
    assert delivery.status == "failed"


# --- Adding and changing --------------------------------------------------------------------------


def test_a_private_address_is_refused_on_its_field_and_nothing_is_stored(as_owner, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    data = {"url": "http://127.0.0.1:9/hooks", "description": "Loja", "types": ["message.received", "message.read"]}
    response = as_owner.post(url("endpoint-new"), data)
    assert response.status_code == 200
    form = response.context["form"]
    assert "127.0.0.1" in form.errors["url"][0] and "WEBHOOK_ALLOW_PRIVATE_TARGETS" in form.errors["url"][0]
    html = response.content.decode()
    assert 'id="id_url_error"' in html or 'class="errorlist' in html
    # The form is kept: what was typed and checked is still there.
    assert 'value="http://127.0.0.1:9/hooks"' in html and 'value="Loja"' in html
    assert re.search(r'value="message.read"[^>]*checked', html)
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("address", ["ftp://example.com/x", "https://user:pass@example.com/x", "not a url"])
def test_other_bad_addresses_are_refused(as_owner, address):
    response = as_owner.post(url("endpoint-new"), {"url": address})
    assert response.status_code == 200 and response.context["form"].errors["url"]
    assert not WebhookEndpoint.objects.exists()


def test_an_unknown_event_type_is_refused(as_owner, receiver):
    response = as_owner.post(url("endpoint-new"), {"url": receiver.url, "types": ["message.teleported"]})
    assert response.status_code == 200 and response.context["form"].errors["types"]
    assert not WebhookEndpoint.objects.exists()


def test_adding_shows_the_secret_once_and_never_in_a_url(as_owner, receiver):
    response = as_owner.post(url("endpoint-new"), {"url": receiver.url, "description": "n8n",
                                                   "types": ["message.received", "conversation.closed"]})
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.url, endpoint.description, endpoint.events, endpoint.active) == (
        receiver.url, "n8n", ["message.received", "conversation.closed"], True)
    assert endpoint.secret.startswith("whsec_")
    assert response.status_code == 302 and response.url == url("endpoint", endpoint.pk)
    assert endpoint.secret not in response.url
    assert [level for level, _text in said(response)] == [SUCCESS]

    first = as_owner.get(response.url)
    html = first.content.decode()
    assert 'class="card secret fresh"' in html and f'value="{endpoint.secret}"' in html
    assert "no-store" in first["Cache-Control"]  # the secret stays out of caches
    # The next visit keeps it behind a disclosure.
    again = as_owner.get(response.url).content.decode()
    assert 'class="card secret fresh"' not in again
    assert re.search(r'<details class="secret" id="secret">', again) and endpoint.secret in again


def test_none_checked_means_every_type(as_owner, receiver):
    as_owner.post(url("endpoint-new"), {"url": receiver.url})
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == [] and endpoint.wants("campaign.finished")
    row = as_owner.get(url("endpoints")).context["rows"][0]
    assert row["types"] == integrations.types_text(endpoint) != ""


def test_editing_changes_the_endpoint_and_a_refusal_keeps_it(as_owner, receiver, settings):
    endpoint = make_endpoint(receiver.url, events=["message.read"])
    response = as_owner.post(url("endpoint-edit", endpoint.pk), {"url": receiver.url + "/v2", "description": "CRM",
                                                                  "types": ["contact.opted_out"]})
    assert response.status_code == 302 and response.url == url("endpoint", endpoint.pk)
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description, endpoint.events) == (receiver.url + "/v2", "CRM",
                                                                     ["contact.opted_out"])
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = as_owner.post(url("endpoint-edit", endpoint.pk), {"url": "http://10.0.0.5/x", "description": "Outro"})
    assert response.status_code == 200 and response.context["form"].errors["url"]
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description) == (receiver.url + "/v2", "CRM")
    # The edit form starts from the endpoint's values.
    form = as_owner.get(url("endpoint-edit", endpoint.pk)).context["form"]
    assert form.initial == {"url": endpoint.url, "description": "CRM", "types": ["contact.opted_out"]}


# --- The actions ----------------------------------------------------------------------------------


def test_the_test_button_posts_a_signed_test_event_and_says_200(as_owner, receiver):
    endpoint = make_endpoint(receiver.url)
    response = as_owner.post(url("endpoint-action", endpoint.pk, "test"))
    assert response.status_code == 302 and response.url == url("endpoint", endpoint.pk)
    [(level, text)] = said(response)
    assert level == SUCCESS and "HTTP 200" in text and " ms" in text and "ok" in text
    [request] = receiver.requests
    assert request["headers"]["X-Hoztech-Event"] == "endpoint.test"
    assert request["headers"]["X-Hoztech-Signature"].startswith("t=")
    assert not EventDelivery.objects.exists()  # a test is not kept in the log


def test_a_failed_test_says_the_status_and_the_answer_escaped(as_owner, receiver):
    endpoint = make_endpoint(receiver.url)
    receiver.answer((500, 0, f"Erro interno {XSS}".encode()))
    response = as_owner.post(url("endpoint-action", endpoint.pk, "test"), follow=True)
    [message] = response.context["messages"]
    assert message.level == ERROR and "HTTP 500" in message.message and XSS in message.message
    html = response.content.decode()
    assert XSS not in html and ESCAPED in html


def test_a_test_to_nowhere_says_why(as_owner, private_ok):
    endpoint = make_endpoint("http://127.0.0.1:9/hooks")  # the discard port: nothing listens
    response = as_owner.post(url("endpoint-action", endpoint.pk, "test"))
    [(level, text)] = said(response)
    assert level == ERROR and "Connection" in text


def test_disabling_and_enabling(as_owner, endpoint):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now())
    as_owner.post(url("endpoint-action", endpoint.pk, "disable"))
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.disabled_reason) == (False, "")
    assert integrations.state(endpoint)[0] == "closed"
    as_owner.post(url("endpoint-action", endpoint.pk, "enable"))
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.failing_since, endpoint.disabled_at) == (True, None, None)


def test_a_new_secret_is_made_and_shown_once(as_owner, endpoint):
    response = as_owner.post(url("endpoint-action", endpoint.pk, "secret"))
    endpoint.refresh_from_db()
    assert endpoint.secret != "whsec_test_secret_value" and endpoint.secret not in response.url
    html = as_owner.get(response.url).content.decode()
    assert 'class="card secret fresh"' in html and f'value="{endpoint.secret}"' in html


def test_removing_asks_first_then_removes_the_log_too(as_owner, endpoint):
    make_delivery(endpoint)
    confirm = as_owner.get(url("endpoint-delete", endpoint.pk))
    assert confirm.status_code == 200 and WebhookEndpoint.objects.exists()
    response = as_owner.post(url("endpoint-delete", endpoint.pk))
    assert response.status_code == 302 and response.url == url("endpoints")
    assert not WebhookEndpoint.objects.listed().exists() and not EventDelivery.objects.exists()
    assert as_owner.get(url("endpoint", endpoint.pk)).status_code == 404
    assert endpoint.url not in as_owner.get(url("endpoints")).content.decode()


# --- The delivery log -----------------------------------------------------------------------------


def test_replaying_one_delivery_moves_it_back_to_pending(as_owner, endpoint):
    failed = make_delivery(endpoint, "failed", 1, next_attempt_at=None, attempts=9)
    other = make_delivery(endpoint, "failed", 2, next_attempt_at=None)
    response = as_owner.post(url("delivery-replay", endpoint.pk, failed.pk), {"status": "failed"})
    assert response.status_code == 302 and response.url == url("endpoint", endpoint.pk) + "?status=failed#deliveries"
    failed.refresh_from_db()
    other.refresh_from_db()
    assert failed.status == "pending" and failed.next_attempt_at <= timezone.now()
    assert failed.event_id == "evt_" + f"{1:024x}"  # same id, same body: receivers dedupe
    assert other.status == "failed"


def test_replaying_every_failed_delivery(as_owner, endpoint):
    failed = [make_delivery(endpoint, "failed", index) for index in range(3)]
    delivered = make_delivery(endpoint, "delivered", 9)
    response = as_owner.post(url("endpoint-action", endpoint.pk, "replay-failed"))
    assert said(response)[0][0] == SUCCESS and "3" in said(response)[0][1]
    assert set(EventDelivery.objects.filter(pk__in=[row.pk for row in failed]).values_list("status", flat=True)) \
        == {"pending"}
    delivered.refresh_from_db()
    assert delivered.status == "delivered"


def test_a_replayed_delivery_reaches_the_receiver(as_owner, receiver):
    from chatbot import event_delivery

    endpoint = make_endpoint(receiver.url)
    delivery = make_delivery(endpoint, "failed", 5, next_attempt_at=None)
    as_owner.post(url("delivery-replay", endpoint.pk, delivery.pk))
    assert event_delivery.drain() == 1
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.response_status == 200
    assert receiver.events()[0]["id"] == delivery.event_id


def test_the_log_newest_first_filtered_and_paged(as_owner, endpoint):
    now = timezone.now()
    for index in range(integrations.LOG_PAGE + 2):
        make_delivery(endpoint, "failed" if index % 2 else "delivered", index,
                      created_at=now - timedelta(minutes=index))
    make_delivery(make_endpoint("http://203.0.113.11/x"), "failed", 99)  # another endpoint's
    response = as_owner.get(url("endpoint", endpoint.pk))
    rows = [row["delivery"] for row in response.context["rows"]]
    assert len(rows) == integrations.LOG_PAGE and rows[0].event_id == f"evt_{0:024x}"
    assert [row.created_at for row in rows] == sorted((row.created_at for row in rows), reverse=True)
    assert response.context["page"].has_next()
    second = as_owner.get(url("endpoint", endpoint.pk) + "?page=2").context["rows"]
    assert len(second) == 2
    failed = as_owner.get(url("endpoint", endpoint.pk) + "?status=failed").context["rows"]
    assert len(failed) == 13 and {row["delivery"].status for row in failed} == {"failed"}
    assert response.context["counts"] == {"pending": 0, "failed": 13}
    # Each row opens to the body posted, pretty, and the answer.
    assert "&quot;type&quot;: &quot;message.received&quot;" in response.content.decode()


def test_the_list_shows_state_last_result_and_backlog(as_owner):
    broken = make_endpoint("http://203.0.113.12/x", active=False, disabled_at=timezone.now(),
                           disabled_reason=WebhookEndpoint.DISABLED_FAILING)
    fine = make_endpoint("http://203.0.113.13/x")
    make_delivery(broken, "failed", 1, attempts=20, response_status=503, last_attempt_at=timezone.now())
    make_delivery(broken, "pending", 2)
    make_delivery(fine, "delivered", 3, attempts=1, response_status=204, last_attempt_at=timezone.now())
    rows = {row["endpoint"].pk: row for row in as_owner.get(url("endpoints")).context["rows"]}
    assert rows[broken.pk]["counts"] == {"pending": 1, "failed": 1}
    assert rows[broken.pk]["state"][0] == "failed" and rows[broken.pk]["last_look"] == "failed"
    assert rows[broken.pk]["last"].response_status == 503
    assert rows[fine.pk]["counts"] == {"pending": 0, "failed": 0}
    assert (rows[fine.pk]["state"][0], rows[fine.pk]["last_look"]) == ("approved", "approved")


# --- The overview's notice ------------------------------------------------------------------------


def test_the_overview_tells_administrators_of_an_endpoint_disabled_by_failures(as_owner, owner):
    make_endpoint("http://203.0.113.20/off")  # disabled by hand: no notice
    WebhookEndpoint.objects.update(active=False, disabled_at=timezone.now())
    assert 'id="disabled-endpoints"' not in as_owner.get(reverse("chatbot:dashboard")).content.decode()

    broken = make_endpoint(f"http://203.0.113.21/{XSS}", active=False, disabled_at=timezone.now(),
                           disabled_reason=WebhookEndpoint.DISABLED_FAILING)
    html = as_owner.get(reverse("chatbot:dashboard")).content.decode()
    assert 'id="disabled-endpoints"' in html
    assert url("endpoint", broken.pk) + "?status=failed#deliveries" in html
    assert XSS not in html and "http://203.0.113.21/" in html
    # The figures' refresh does not carry it (the page keeps the one it has).
    assert "disabled-endpoints" not in as_owner.get(reverse("chatbot:dashboard") + "?partial=1").content.decode()

    second = make_endpoint("http://203.0.113.22/x", active=False, disabled_at=timezone.now(),
                           disabled_reason=WebhookEndpoint.DISABLED_FAILING)
    html = as_owner.get(reverse("chatbot:dashboard")).content.decode()
    assert html.count("?status=failed#deliveries") == 2 and url("endpoint", second.pk) in html


def test_operators_do_not_see_the_notice(as_operator):
    make_endpoint(active=False, disabled_at=timezone.now(), disabled_reason=WebhookEndpoint.DISABLED_FAILING)
    response = as_operator.get(reverse("chatbot:dashboard"))
    assert response.status_code == 200 and "disabled-endpoints" not in response.content.decode()

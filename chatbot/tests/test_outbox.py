"""The send pipeline (chatbot/sending.py, chatbot/outbox.py) end to end against the fake Graph API over HTTP."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone, translation

from chatbot import documents, inbound, outbox, sending
from chatbot.models import Contact, Message, PhoneNumber
from chatbot.tests.helpers import post_signed

pytestmark = pytest.mark.django_db

PNID = "106540352242922"


def contact(wa_id="5511987654321", **fields):
    return Contact.objects.create(wa_id=wa_id, last_inbound_at=timezone.now(), **fields)


def queue(to=None, **message):
    message = message or {"type": "text", "text": {"body": "Olá! Seu pedido saiu para entrega 🚚"}}
    to = to or contact()
    return sending.queue(
        phone_number=PhoneNumber.objects.default(), contact=to, message=message, source=Message.Source.API
    )


def drain():
    while outbox.drain():
        pass


def make_due(message):
    Message.objects.filter(pk=message.pk).update(send_after=timezone.now())


def test_a_queued_text_is_sent_with_its_callback_tag_and_recorded(fake_graph):
    message = queue()
    drain()
    assert fake_graph.sent() == [{
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+5511987654321", "type": "text",
        "text": {"body": "Olá! Seu pedido saiu para entrega 🚚"}, "biz_opaque_callback_data": f"hoz:{message.pk}",
    }]
    message.refresh_from_db()
    assert (message.status, message.wamid, message.attempts) == ("sent", fake_graph.wamids[0], 1)
    assert message.sent_at is not None


MESSAGES = [
    {"type": "image", "image": {"link": "https://example.com/a.jpg", "caption": "Cardápio"}},
    {"type": "document", "document": {"id": "1234", "filename": "boleto.pdf"}},
    {"type": "audio", "audio": {"id": "55", "voice": True}},
    {"type": "location", "location": {"latitude": -23.56, "longitude": -46.65, "name": "Loja Paulista"}},
    {"type": "contacts", "contacts": [{"name": {"formatted_name": "Suporte"}, "phones": [{"phone": "+551130000000"}]}]},
    {"type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Confirma?"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "sim", "title": "Sim"}}]}}},
    {"type": "template", "template": {
        "name": "pedido_enviado", "language": {"code": "pt_BR"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]}},
    {"type": "reaction", "reaction": {"message_id": "wamid.IN1", "emoji": "👍"}},
]


@pytest.mark.parametrize("message", MESSAGES, ids=[message["type"] for message in MESSAGES])
def test_every_type_reaches_meta_as_queued(fake_graph, message):
    queue(**message)
    drain()
    sent = fake_graph.sent()[0]
    assert sent["type"] == message["type"]
    assert sent[message["type"]] == message[message["type"]]


def test_a_reply_carries_its_context(fake_graph):
    queue(type="text", text={"body": "Sim"}, context={"message_id": "wamid.IN9"})
    drain()
    assert fake_graph.sent()[0]["context"] == {"message_id": "wamid.IN9"}


@pytest.mark.parametrize("failure", [
    {"code": 131000, "http_status": 500}, {"code": 1}, {"code": 2, "http_status": 503}, {"code": 4},
    {"code": 80007}, {"code": 131016, "http_status": 500}, {"code": 131057, "http_status": 500},
    {"code": 133004, "http_status": 503}, {"raw_status": 502, "body": b"<html>Bad gateway</html>"},
])
def test_transient_failures_are_retried_later_then_sent(fake_graph, failure):
    message = queue()
    fake_graph.fail_next(**failure)
    drain()
    message.refresh_from_db()
    assert message.status == "queued"
    assert message.send_after > timezone.now()
    make_due(message)
    drain()
    message.refresh_from_db()
    assert (message.status, message.attempts, message.error_code) == ("sent", 2, None)
    assert len(fake_graph.sent()) == 2


def test_retries_stop_after_an_hour_and_record_the_failure(fake_graph):
    message = queue()
    two_hours_ago = timezone.now() - timedelta(hours=2)  # queued then (its time too: not a scheduled one)
    Message.objects.filter(pk=message.pk).update(created_at=two_hours_ago, timestamp=two_hours_ago)
    fake_graph.fail_next(code=131000, http_status=500, details="Something went wrong")
    drain()
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", 131000)


@pytest.mark.parametrize("code, words", [
    (131047, "24 hours"), (131026, "could not be delivered"), (131049, "marketing"), (131050, "stopped marketing"),
    (132000, "parameters"), (132001, "does not exist"), (100, "parameter"),
])
def test_permanent_failures_are_recorded_with_a_plain_explanation(fake_graph, code, words):
    message = queue()
    fake_graph.fail_next(code=code, details="Meta's details")
    drain()
    message.refresh_from_db()
    assert (message.status, message.error_code, message.error_details) == ("failed", code, "Meta's details")
    assert message.failed_at is not None
    with translation.override("en"):
        assert words in documents.message_object(message)["error"]["explanation"]
    assert len(fake_graph.sent()) == 1


def test_a_customer_who_stopped_marketing_at_meta_is_opted_out(fake_graph):
    message = queue()
    fake_graph.fail_next(code=131050)
    drain()
    customer = Contact.objects.get(pk=message.contact_id)
    assert customer.opted_out and customer.opted_out_at is not None
    # Any other refusal leaves the choice alone.
    other = queue(to=contact("5511900000009"))
    fake_graph.fail_next(code=131026)
    drain()
    assert not Contact.objects.get(pk=other.contact_id).opted_out


def test_explanations_are_in_portuguese_first(fake_graph):
    message = queue()
    fake_graph.fail_next(code=131047)
    drain()
    message.refresh_from_db()
    assert documents.message_object(message)["error"]["explanation"].startswith("Mais de 24 horas")


def test_an_invalid_token_pauses_sending_instead_of_hammering_meta(fake_graph, client, settings):
    first, second = queue(), queue(to=contact("5511900000001"))
    fake_graph.fail_next(code=190, http_status=401, times=2)
    drain()
    assert Message.objects.get(pk=first.pk).status == "queued"
    assert outbox.token_refused()
    assert client.get("/chatbot/health/").json()["checks"]["whatsapp"]["token"] == "invalid"
    requests = len(fake_graph.sent())
    drain()
    assert len(fake_graph.sent()) == requests  # paused: nothing more reached Meta
    # Five minutes later one try shows the token works again; sending resumes.
    PhoneNumber.objects.update(token_invalid_at=timezone.now() - outbox.TOKEN_PAUSE)
    drain()
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    assert not outbox.token_refused()
    assert {first.pk, second.pk} == set(Message.objects.filter(status="sent").values_list("pk", flat=True))


def test_a_new_token_is_tried_at_once(fake_graph, settings):
    message = queue()
    fake_graph.fail_next(code=190, http_status=401)
    drain()
    settings.WHATSAPP_ACCESS_TOKEN = fake_graph.token = "new-token"
    drain()
    message.refresh_from_db()
    assert message.status == "sent"


def test_pair_rate_limit_backs_off_four_to_the_x_seconds(fake_graph):
    message = queue()
    fake_graph.fail_next(code=131056, times=2)
    drain()
    message.refresh_from_db()
    assert message.pair_limit_hits == 1
    assert 0.5 < (message.send_after - timezone.now()).total_seconds() <= 1
    make_due(message)
    Contact.objects.update(send_booked_until=None)
    drain()
    message.refresh_from_db()
    assert message.pair_limit_hits == 2
    assert 3 < (message.send_after - timezone.now()).total_seconds() <= 4


def test_bursts_to_one_customer_are_paced_to_the_pair_limit(fake_graph):
    customer = contact()
    messages = [queue(to=customer) for _ in range(12)]
    drain()
    assert len(fake_graph.sent()) == outbox.PAIR_BURST
    waiting = Message.objects.filter(status="queued")
    assert waiting.count() == 2
    assert all(message.send_after > timezone.now() for message in waiting)
    assert messages[-1].pk in set(waiting.values_list("pk", flat=True))


def test_a_timeout_is_not_sent_again_and_its_status_webhook_completes_it(fake_graph, client):
    message = queue()
    fake_graph.drop_next()
    drain()
    message.refresh_from_db()
    assert (message.status, message.wamid) == ("sending", None)
    drain()
    assert len(fake_graph.sent()) == 1  # never a second copy
    wamid = fake_graph.wamids[0]
    post_signed(client, status_webhook(wamid, "delivered", f"hoz:{message.pk}"))
    inbound.drain()
    message.refresh_from_db()
    assert (message.status, message.wamid) == ("delivered", wamid)


def test_a_send_lost_with_its_worker_ends_failed_as_unknown_never_resent(fake_graph):
    message = queue()
    # A worker claimed it and died before recording anything.
    Message.objects.filter(pk=message.pk).update(status="sending", claimed_at=timezone.now() - timedelta(minutes=11))
    drain()
    assert fake_graph.sent() == []
    assert outbox.sweep() == 1
    message.refresh_from_db()
    assert message.status == "failed"
    with translation.override("en"):
        assert "not sent again" in documents.message_object(message)["error"]["explanation"]


def test_the_wa_id_meta_resolves_becomes_the_contacts(fake_graph):
    fake_graph.wa_ids = {"5511987654321": "551187654321"}
    message = queue()
    drain()
    message.refresh_from_db()
    assert message.contact.wa_id == "551187654321"


def test_a_number_written_with_the_ninth_digit_joins_the_existing_contact(fake_graph):
    known = contact("551187654321", name="Maria")
    fake_graph.wa_ids = {"5511987654321": "551187654321"}
    message = queue(to=Contact.objects.create(wa_id="5511987654321"))
    drain()
    message.refresh_from_db()
    assert message.contact == known
    assert Contact.objects.count() == 1


def test_sandbox_mode_runs_the_pipeline_without_meta(settings):
    settings.WHATSAPP_ACCESS_TOKEN = ""
    message = queue()
    drain()
    message.refresh_from_db()
    assert message.status == "sent"
    assert message.wamid.startswith("sandbox.")


def status_webhook(wamid, status, callback=""):
    item = {"id": wamid, "status": status, "timestamp": str(int(timezone.now().timestamp())),
            "recipient_id": "5511987654321"}
    if callback:
        item["biz_opaque_callback_data"] = callback
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
        "statuses": [item]}}]}]}


def test_a_status_webhook_quicker_than_metas_answer_is_kept(client):
    message = queue()
    [claimed] = outbox.claim(timezone.now(), 10, threading.Event())
    post_signed(client, status_webhook("wamid.EARLY", "delivered", f"hoz:{message.pk}"))
    inbound.drain()
    outbox.record([outbox.Outcome(claimed, "sent", wamid="wamid.EARLY", wa_id="5511987654321")])
    message.refresh_from_db()
    assert (message.status, message.wamid) == ("delivered", "wamid.EARLY")
    assert message.sent_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_stopping_worker_hands_unsent_messages_back(fake_graph, settings):
    import time

    settings.WHATSAPP_MESSAGES_PER_SECOND = 1  # slots a second apart: the later ones are still waiting
    messages = [queue(to=contact(f"551190000000{index}")) for index in range(3)]
    stopping = threading.Event()

    def work():
        try:
            outbox.drain(stopping=stopping)
        finally:
            connection.close()  # this thread's own

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(0.3)
    stopping.set()
    worker.join(timeout=10)
    statuses = [Message.objects.get(pk=message.pk).status for message in messages]
    assert statuses == ["sent", "queued", "queued"]
    assert len(fake_graph.sent()) == 1
    assert Message.objects.get(pk=messages[1].pk).attempts == 0


def test_number_slots_are_booked_back_to_back():
    from chatbot import ratelimit

    before = timezone.now()
    first = ratelimit.reserve("number:test", 3, interval=0.1)  # creates the rate's row
    second = ratelimit.reserve("number:test", 2, interval=0.1)
    assert before <= first <= timezone.now()
    assert second == first + timedelta(seconds=0.3)  # right after the three slots booked first
    assert ratelimit.reserve("number:test", 1, interval=0.1) == second + timedelta(seconds=0.2)


def test_a_batch_is_about_half_a_second_of_the_cap(settings):
    settings.WHATSAPP_MESSAGES_PER_SECOND = 80
    assert outbox.batch_size() == 40
    settings.WHATSAPP_MESSAGES_PER_SECOND = 100_000
    assert outbox.batch_size() == outbox.MAX_BATCH
    settings.WHATSAPP_MESSAGES_PER_SECOND = 1
    assert outbox.batch_size() == outbox.MIN_BATCH


def test_the_pace_leaves_at_least_one_message_a_second_under_the_cap():
    # A send that starts late lands in the next second beside that second's own: at a cap of 20,
    # 3 % (0.6) left room for none, and a fault run counted 21 in one second.
    assert outbox.paced_rate(80) == pytest.approx(77.6)
    assert outbox.paced_rate(20) == 19
    assert outbox.paced_rate(1) == pytest.approx(0.97)


def test_messages_claimed_as_the_process_ends_go_back_to_the_queue_unsent(fake_graph):
    from concurrent.futures import ThreadPoolExecutor

    message = queue(to=contact())
    pool = ThreadPoolExecutor(1)
    pool.shutdown()  # as at the interpreter's end: the pool takes no more work
    stopping = threading.Event()

    outbox.Pipeline(pool, stopping).step()

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("queued", 0) and stopping.is_set()
    assert fake_graph.sent() == []

"""Messages scheduled in a conversation (chatbot/scheduling.py): sent at their time through the
outbox and the fake Graph API, never before; the 24-hour window judged at that time; cancelled
until the outbox claims them; not a backlog for the worker's poll, health or the status command.
Then the dashboard's side: scheduling and cancelling over HTTP, the thread and the list."""

import json
import threading
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone, translation

from chatbot import diagnostics, documents, health, lgpd, outbox, scheduling, sending
from chatbot.dashboard import actions, selectors
from chatbot.handling import ColleagueHasIt
from chatbot.models import Department, Message, Session, Template, WorkerBeat

from .helpers import make_operator, make_session

pytestmark = pytest.mark.django_db

TEXT = {"type": "text", "text": {"body": "Bom dia! Seu pedido fica pronto hoje às 14h."}}


@contextmanager
def moved_to(moment):
    """The clock at `moment` for everything that asks django.utils.timezone.now()."""
    with mock.patch.object(timezone, "now", return_value=moment):
        yield


def drain():
    while outbox.drain():
        pass


@pytest.fixture
def session(ana):
    """Joana wrote 5 minutes ago: her window is open for almost 24 hours."""
    return make_session(wa_id="5511987654321", name="Joana", status=Session.Status.OPEN)


@pytest.fixture
def template():
    return Template.objects.create(name="lembrete_retirada", language="pt_BR", category="UTILITY", status="APPROVED",
                                   components=[{"type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} está pronto."}])


def reminder(template):
    return actions.template_message(template, ["Joana", "4321"])


def schedule(session, user, at, message=TEXT, **options):
    return scheduling.schedule(session=session, user=user, at=at, message=message, **options)


# --- At its time, not before --------------------------------------------------------------------


def test_a_scheduled_message_goes_at_its_time_and_not_before(session, ana, fake_graph):
    at = timezone.now() + timedelta(hours=3)
    message = schedule(session, ana, at)
    assert (message.status, message.send_after, message.timestamp, message.sent_by) == ("queued", at, at, ana)
    assert (message.source, message.session) == (Message.Source.OPERATOR, session)
    drain()
    with moved_to(at - timedelta(seconds=1)):
        drain()
    assert fake_graph.sent() == []
    with moved_to(at + timedelta(seconds=1)):
        drain()
    assert [sent["text"]["body"] for sent in fake_graph.sent()] == [TEXT["text"]["body"]]
    message.refresh_from_db()
    assert (message.status, message.wamid) == ("sent", fake_graph.wamids[0])


def test_a_template_may_be_scheduled_after_the_window_closed(session, ana, template, fake_graph):
    session.contact.last_inbound_at = timezone.now() - timedelta(days=2)
    session.contact.save()
    at = timezone.now() + timedelta(days=3)
    schedule(session, ana, at, reminder(template))
    with moved_to(at + timedelta(seconds=5)):
        drain()
    sent = fake_graph.sent()[0]["template"]
    assert sent["name"] == "lembrete_retirada"
    assert [p["text"] for p in sent["components"][0]["parameters"]] == ["Joana", "4321"]


def test_free_text_is_refused_for_a_time_after_the_window_closes(session, ana):
    last = timezone.now() - timedelta(hours=20)
    session.contact.last_inbound_at = last
    session.contact.save()
    schedule(session, ana, last + timedelta(hours=23, minutes=59))  # still open then
    with translation.override("en"), pytest.raises(sending.SendRefused) as refused:
        schedule(session, ana, last + timedelta(hours=24, minutes=1))
    assert refused.value.code == "outside_customer_service_window"
    with translation.override("en"):
        assert scheduling.local(last + timedelta(hours=24)) in refused.value.message  # until when
    assert "approved template" in refused.value.message


def test_free_text_is_refused_when_the_window_is_already_closed(session, ana):
    session.contact.last_inbound_at = None
    session.contact.save()
    with translation.override("en"), pytest.raises(sending.SendRefused) as refused:
        schedule(session, ana, timezone.now() + timedelta(hours=1))
    assert refused.value.code == "outside_customer_service_window"
    assert "only an approved template can be scheduled" in refused.value.message


@pytest.mark.parametrize("offset", [timedelta(minutes=-1), timedelta(0), timedelta(days=30, minutes=1)])
def test_a_time_in_the_past_or_too_far_ahead_is_refused(session, ana, offset):
    with pytest.raises(sending.SendRefused) as refused:
        schedule(session, ana, timezone.now() + offset)
    assert (refused.value.code, refused.value.field) == ("invalid_request", "at")
    assert not Message.objects.filter(direction="out").exists()


def test_the_rules_of_every_send_apply(session, ana, bia):
    later = timezone.now() + timedelta(hours=1)
    session.contact.blocked = True
    session.contact.save()
    with pytest.raises(sending.SendRefused) as refused:
        schedule(session, ana, later)
    assert refused.value.code == "contact_blocked"
    session.contact.blocked = False
    session.contact.save()
    with pytest.raises(sending.SendRefused):
        schedule(session, ana, later, {"type": "text", "text": {"body": ""}})  # what Meta refuses
    Session.objects.filter(pk=session.pk).update(assigned_to=bia)
    session.refresh_from_db()
    with pytest.raises(ColleagueHasIt):
        schedule(session, ana, later)
    schedule(session, ana, later, override=True)
    session.refresh_from_db()
    assert session.assigned_to == bia  # scheduling says nothing now: the conversation stays Bia's
    Session.objects.filter(pk=session.pk).update(status=Session.Status.CLOSED)
    session.refresh_from_db()
    with pytest.raises(sending.SendRefused) as refused:
        schedule(session, ana, later)
    assert refused.value.code == "conversation_closed"


# --- Cancelling ---------------------------------------------------------------------------------


def test_cancelled_before_its_time_it_is_never_sent(session, ana, fake_graph):
    at = timezone.now() + timedelta(hours=2)
    message = schedule(session, ana, at)
    assert list(scheduling.pending(session)) == [message]
    scheduling.cancel(message)
    assert not Message.objects.filter(pk=message.pk).exists()
    with moved_to(at + timedelta(minutes=1)):
        drain()
    assert fake_graph.sent() == []


def test_once_the_outbox_claimed_it_it_is_too_late(session, ana, fake_graph):
    at = timezone.now() + timedelta(hours=2)
    message = schedule(session, ana, at)
    with moved_to(at):
        assert outbox.claim(at, 10, threading.Event()) == [message]  # being sent
    with pytest.raises(scheduling.TooLate):
        scheduling.cancel(message)
    assert Message.objects.get(pk=message.pk).status == "sending"
    sent = schedule(session, ana, at)
    with moved_to(at + timedelta(seconds=1)):
        drain()
    with pytest.raises(scheduling.TooLate):
        scheduling.cancel(sent)
    assert Message.objects.get(pk=sent.pk).status == "sent"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_a_row_the_outbox_is_claiming_this_instant_is_too_late_too(django_user_model):
    ana = make_operator(django_user_model, "ana")
    session = make_session(status=Session.Status.OPEN)
    message = schedule(session, ana, timezone.now() + timedelta(hours=1))
    locked, release = threading.Event(), threading.Event()

    def claiming():  # the outbox's claim holds the row (FOR UPDATE) in its transaction
        try:
            with transaction.atomic():
                list(Message.objects.select_for_update().filter(pk=message.pk))
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=claiming)
    thread.start()
    try:
        assert locked.wait(10)
        with pytest.raises(scheduling.TooLate):
            scheduling.cancel(message)  # SKIP LOCKED: no wait, no deadlock
    finally:
        release.set()
        thread.join(10)
    assert Message.objects.filter(pk=message.pk).exists()


# --- Not a backlog ------------------------------------------------------------------------------


def test_only_due_messages_make_the_outbox_look(session, ana, template):
    at = timezone.now() + timedelta(days=7)
    schedule(session, ana, at, reminder(template))
    assert outbox.queued() is False
    assert outbox.drain() == 0
    with moved_to(at):
        assert outbox.queued() is True
    sending.queue(phone_number=session.phone_number, contact=session.contact, message=TEXT,
                  source=Message.Source.API)
    assert outbox.queued() is True


def test_a_scheduled_message_created_long_ago_is_retried_at_its_time(session, ana, template, fake_graph):
    at = timezone.now() + timedelta(days=2)
    message = schedule(session, ana, at, reminder(template))
    fake_graph.fail_next(code=131000, http_status=500, details="Something went wrong")
    with moved_to(at + timedelta(seconds=1)):
        outbox.drain()
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("queued", 131000)  # a retry, not a failure


def test_health_and_status_do_not_report_a_scheduled_message_as_stuck(session, ana, template):
    WorkerBeat.objects.create(worker_id="w1", hostname="app1", pid=42)
    schedule(session, ana, timezone.now() + timedelta(days=3), reminder(template))
    report = health.report(cached=False)
    assert report["checks"]["queue"] == {"ok": True, "pending": 0, "oldest_pending_s": 0}
    assert report["status"] == "ok"
    out = StringIO()
    call_command("whatsapp_chatbot", "status", "--json", stdout=out)
    status = json.loads(out.getvalue())
    assert status["queue"]["ok"] is True and status["queue"]["pending"] == 0
    assert status["counts"]["messages_24h"] == diagnostics.counts()["messages_24h"] == 1  # the customer's only


def test_the_overview_counts_today_only_what_was_sent(session, ana, template):
    schedule(session, ana, timezone.now() + timedelta(minutes=30))
    schedule(session, ana, timezone.now() + timedelta(days=3), reminder(template))
    figures = selectors.overview(ana)
    assert (figures["messages_in"], figures["messages_out"]) == (1, 0)


def test_erasing_the_customer_fails_what_was_scheduled_and_the_export_shows_it(session, ana, fake_graph):
    at = timezone.now() + timedelta(hours=5)
    message = schedule(session, ana, at)
    exported = documents.contact_export(session.contact)["messages"][-1]
    assert (exported["id"], exported["status"], exported["timestamp"]) == (message.pk, "queued", at.isoformat())
    lgpd.anonymize(session.contact)
    with moved_to(at + timedelta(minutes=1)):
        drain()
    assert fake_graph.sent() == []
    assert Message.objects.get(pk=message.pk).status == "failed"


# --- The dashboard ------------------------------------------------------------------------------


def local_input(moment):
    """What a browser's datetime-local input sends for `moment` (in TIME_ZONE)."""
    return f"{timezone.localtime(moment):%Y-%m-%dT%H:%M}"


def url(name, *args):
    return reverse(f"chatbot:{name}", args=args)


def test_scheduling_a_text_from_the_conversation(client, session, ana):
    client.force_login(ana)
    at = (timezone.localtime() + timedelta(hours=3)).replace(second=0, microsecond=0)
    response = client.post(url("dashboard-conversation-schedule", session.pk),
                           {"at": local_input(at), "kind": "text", "text": "Oi {first_name}, passando para lembrar!"},
                           HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert response["Location"].endswith(url("dashboard-conversation", session.pk) + "#scheduled")
    message = Message.objects.get(direction="out")
    assert (message.send_after, message.text, message.sent_by) == (at, "Oi Joana, passando para lembrar!", ana)
    page = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en")
    body = page.content.decode()
    with translation.override("en"):
        assert f"Message scheduled for {scheduling.local(at)}." in body
    assert page.context["thread"][-1] == message  # the thread shows it where it will be
    assert f"scheduled for {at:%d/%m %H:%M}" in body and 'data-scheduled="1"' in body
    assert "Scheduled by ana" in body and url("dashboard-scheduled-cancel", message.pk) in body
    assert Session.objects.get(pk=session.pk).first_response_at is None  # nothing was said yet


def test_scheduling_a_template_with_its_parameters(client, session, ana, template):
    client.force_login(ana)
    at = timezone.localtime() + timedelta(days=10)
    response = client.post(url("dashboard-conversation-schedule", session.pk),
                           {"at": local_input(at), "kind": "template", "template": template.pk,
                            f"param-{template.pk}": ["Joana", "4321"], "text": "ignored"})
    assert response.status_code == 302
    message = Message.objects.get(direction="out")
    assert message.type == "template"
    assert [p["text"] for p in message.payload["components"][0]["parameters"]] == ["Joana", "4321"]


def test_a_refusal_comes_back_with_the_form_as_written(client, session, ana):
    client.force_login(ana)
    session.contact.last_inbound_at = timezone.now() - timedelta(hours=23)
    session.contact.save()
    at = local_input(timezone.now() + timedelta(hours=5))
    response = client.post(url("dashboard-conversation-schedule", session.pk),
                           {"at": at, "kind": "text", "text": "Lembrete do seu pedido"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    body = response.content.decode()
    assert "24-hour window closes at" in body and "choose an approved template" in body
    assert "Lembrete do seu pedido</textarea>" in body and f'value="{at}"' in body
    assert '<details id="schedule" open>' in body
    missing = client.post(url("dashboard-conversation-schedule", session.pk), {"kind": "text", "text": "x"},
                          HTTP_ACCEPT_LANGUAGE="en")
    assert missing.status_code == 400 and "Choose the day and time to send it." in missing.content.decode()
    assert not Message.objects.filter(direction="out").exists()


def test_only_the_author_or_an_administrator_cancels(client, session, ana, bia, owner):
    message = schedule(session, ana, timezone.now() + timedelta(hours=2))
    cancel = url("dashboard-scheduled-cancel", message.pk)
    client.force_login(bia)
    page = client.get(url("dashboard-conversation", session.pk), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Scheduled by ana" in page
    assert cancel not in page  # no button for a colleague
    assert client.post(cancel, {"session": session.pk}).status_code == 403
    client.force_login(ana)
    assert cancel in client.get(url("dashboard-conversation", session.pk)).content.decode()
    response = client.post(cancel, {"session": session.pk}, HTTP_ACCEPT_LANGUAGE="en")
    assert response["Location"].endswith("#scheduled")
    assert not Message.objects.filter(pk=message.pk).exists()
    again = client.post(cancel, {"session": session.pk}, HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "already cancelled" in again.content.decode()
    other = schedule(session, ana, timezone.now() + timedelta(hours=2))
    client.force_login(owner)
    client.post(url("dashboard-scheduled-cancel", other.pk), {"session": session.pk})
    assert not Message.objects.filter(pk=other.pk).exists()


def test_cancelling_one_already_sent_says_it_is_too_late(client, session, ana, fake_graph):
    at = timezone.now() + timedelta(hours=2)
    message = schedule(session, ana, at)
    with moved_to(at):
        drain()
    client.force_login(ana)
    response = client.post(url("dashboard-scheduled-cancel", message.pk), {"session": session.pk},
                           HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "Too late to cancel" in response.content.decode()
    assert Message.objects.get(pk=message.pk).status == "sent"


def test_who_cannot_see_the_conversation_cannot_schedule_or_cancel_there(client, session, ana, bia):
    restricted = Department.objects.create(name="Financeiro", restricted=True)
    restricted.operators.add(ana)
    Session.objects.filter(pk=session.pk).update(department=restricted, assigned_to=ana)
    message = schedule(session, ana, timezone.now() + timedelta(hours=2))
    client.force_login(bia)
    at = local_input(timezone.now() + timedelta(hours=2))
    assert client.post(url("dashboard-conversation-schedule", session.pk),
                       {"at": at, "kind": "text", "text": "x"}).status_code == 404
    assert client.post(url("dashboard-scheduled-cancel", message.pk), {"session": session.pk}).status_code == 404
    assert Message.objects.filter(direction="out").count() == 1


def test_a_closed_conversation_offers_no_scheduling(client, session, ana):
    Session.objects.filter(pk=session.pk).update(status=Session.Status.CLOSED)
    client.force_login(ana)
    page = client.get(url("dashboard-conversation", session.pk)).content.decode()
    assert 'id="schedule-form"' not in page
    response = client.post(url("dashboard-conversation-schedule", session.pk),
                           {"at": local_input(timezone.now() + timedelta(hours=1)), "kind": "text", "text": "x"})
    assert response.status_code == 400 and not Message.objects.filter(direction="out").exists()


def test_live_updates_bring_a_scheduled_message_and_its_cancellation(client, session, ana, bia):
    client.force_login(bia)
    page = client.get(url("dashboard-conversation", session.pk))
    updates = url("dashboard-conversation-updates", session.pk)
    message = schedule(session, ana, timezone.now() + timedelta(hours=2))
    answer = client.get(updates, {"mark": page.context["mark"]}, HTTP_ACCEPT_LANGUAGE="en").json()
    assert answer["changed"] is True and answer["messages"][-1][0] == message.pk
    assert f'id="s{message.pk}"' in answer["scheduled"]
    # A customer's message after it comes before it in the thread: the scheduled one stays last.
    later = Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                                   direction="in", source="customer", type="text", text="Obrigada!",
                                   status="received", wamid="wamid.later")
    answer = client.get(updates, {"mark": answer["mark"]}).json()
    assert [row[0] for row in answer["messages"][-2:]] == [later.pk, message.pk]
    scheduling.cancel(message)
    answer = client.get(updates, {"mark": answer["mark"]}, HTTP_ACCEPT_LANGUAGE="en").json()
    assert answer["changed"] is True and message.pk not in [row[0] for row in answer["messages"]]
    assert "No message scheduled." in answer["scheduled"]


def test_paging_back_follows_the_threads_time_order(client, session, ana):
    for index in range(selectors.THREAD_PAGE + 5):
        Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                               direction="in", source="customer", type="text", text=f"m{index}", status="received")
    scheduled = schedule(session, ana, timezone.now() + timedelta(hours=1))
    client.force_login(ana)
    first = client.get(url("dashboard-conversation", session.pk)).context
    assert first["thread"][-1] == scheduled
    older = client.get(url("dashboard-conversation", session.pk), {"before": first["older"]}).context["thread"]
    shown = [message.pk for message in older + first["thread"]]
    assert len(shown) == len(set(shown)) == selectors.THREAD_PAGE + 7  # make_session's, the 55, the scheduled

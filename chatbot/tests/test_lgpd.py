"""LGPD: export, anonymize (no trace left anywhere in the database) and the retention purge."""

import json
import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from chatbot import contacts, lgpd
from chatbot.models import (
    ApiToken,
    Contact,
    IdempotencyKey,
    Message,
    PendingStatus,
    PhoneNumber,
    Session,
    WebhookEvent,
)
from chatbot.tests.helpers import payload_bytes, post_signed, stored_files
from chatbot.whatsapp import webhook

pytestmark = pytest.mark.django_db

NUMBER = "5511987654321"  # Maria Conceição in payloads/text.json
OTHER = "5521912345678"
PNID = "106540352242922"


def two_customers_in_one_post():
    """One POST carrying Maria's and Pedro's messages, as Meta batches them."""
    maria = json.loads(webhook.customer_message(phone_number_id=PNID, wa_id=NUMBER, name="Maria Conceição",
                                                wamid="wamid.MARIA2", text="Meu endereço é Rua das Acácias, 12"))
    pedro = json.loads(webhook.customer_message(phone_number_id=PNID, wa_id=OTHER, name="Pedro",
                                                wamid="wamid.PEDRO1", text="Bom dia"))
    value = maria["entry"][0]["changes"][0]["value"]
    other = pedro["entry"][0]["changes"][0]["value"]
    value["contacts"] += other["contacts"]
    value["messages"] += other["messages"]
    return json.dumps(maria, ensure_ascii=True).encode()


@pytest.fixture
def maria(client, run_tasks):
    """Maria wrote twice (once in a POST shared with Pedro), the bot answered, one message has a file."""
    post_signed(client, payload_bytes("text"))
    post_signed(client, two_customers_in_one_post())
    run_tasks()
    contact = Contact.objects.get(wa_id=NUMBER)
    message = contact.messages.filter(direction="in").first()
    message.media_file.save("foto-maria.jpg", ContentFile(b"\xff\xd8 jpeg of Maria"), save=False)
    message.media_mime_type, message.media_id = "image/jpeg", "1234567890"
    message.save()
    Session.objects.filter(contact=contact).update(data={"cpf": "123.456.789-00"})
    return contact


PERSONAL = ["5511987654321", "551187654321", "Maria", "Concei", "pre\\u00e7o", "preço", "Acácias",
            "Ac\\u00e1cias", "123.456.789-00", "foto-maria",
            # A real wamid is base64 around the customer's number: this is "5511987654321" in it.
            "NTUxMTk4NzY1NDMyM"]


def traces(needles):
    """Every (model, pk, needle) where a needle appears in any column of any row of the database."""
    found = []
    for model in apps.get_models():
        for row in model.objects.all():
            values = []
            for field in model._meta.concrete_fields:
                value = getattr(row, field.attname)
                values.append(value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False))
            text = "\n".join(str(value) for value in values)
            found += [(model.__name__, row.pk, needle) for needle in needles if needle in text]
    return found


def test_export_is_the_contract_plus_the_media_list(maria, client):
    document = lgpd.export(maria)
    assert set(document) == {"contact", "sessions", "messages", "media"}
    assert document["contact"]["wa_id"] == NUMBER
    assert document["contact"]["name"] == "Maria Conceição"
    token = ApiToken.objects.create_token("ERP", scopes=["export"])[1]
    answer = client.get(f"/chatbot/api/contacts/{NUMBER}/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.json() == json.loads(json.dumps(document))  # the API gives the same document
    assert [m["direction"] for m in document["messages"]].count("in") == 2
    [media] = document["media"]
    assert media["mime_type"] == "image/jpeg"
    assert media["file"].startswith("media/") and "foto-maria" in media["file"]


def test_anonymize_leaves_no_trace_of_the_contact(maria, django_capture_on_commit_callbacks):
    assert traces(PERSONAL)  # the check below can see them at all
    messages, sessions = Message.objects.count(), Session.objects.count()
    file_name = maria.messages.exclude(media_file="").get().media_file.name
    assert default_storage.exists(file_name)

    with django_capture_on_commit_callbacks(execute=True):
        counts = lgpd.anonymize(maria)

    assert traces(PERSONAL) == []
    assert not default_storage.exists(file_name)
    # Aggregates are kept: the rows stay, emptied.
    assert (Message.objects.count(), Session.objects.count()) == (messages, sessions)
    assert counts["messages"] == maria.messages.count() >= 3
    assert counts["media_files"] == 1
    maria.refresh_from_db()
    assert maria.anonymized_at is not None
    assert (maria.wa_id, maria.user_id, maria.name, maria.username) == ("", "", "", "")
    assert not maria.messages.exclude(text="").exists()
    assert not Session.objects.filter(contact=maria).exclude(status="closed").exists()


def spread_everywhere(maria, client, admin_client, fake_graph, run_tasks):
    """What an outside review found surviving an erasure: an admin's note and edit (in the admin's
    history), statuses that came early (task rows carrying the wamid), a failed task's traceback,
    an error and an account event quoting the contact, a re-downloaded file."""
    from chatbot import media, tasks
    from chatbot.models import AccountEvent, Note

    session = maria.sessions.get()
    change = admin_client.get(f"/admin/chatbot/session/{session.pk}/change/")
    form = {key: value for key, value in change.context["adminform"].form.initial.items() if value is not None}
    form.update({"contact": maria.pk, "phone_number": session.phone_number_id, "status": session.status,
                 "started_at_0": "01/01/2026", "started_at_1": "10:00", "last_message_at_0": "01/01/2026",
                 "last_message_at_1": "10:00", "unread": 0, "bot_state": "{}", "data": "{}",
                 "notes-TOTAL_FORMS": 1, "notes-INITIAL_FORMS": 0, "notes-0-text": "Maria pediu o boleto da Rua das "
                 "Acácias", "notes-0-session": session.pk})
    assert admin_client.post(f"/admin/chatbot/session/{session.pk}/change/", form).status_code == 302
    assert Note.objects.filter(session=session).exists()
    wamid = maria.messages.filter(direction="in").exclude(wamid=None).first().wamid
    # Early statuses: one task queued by this version (the row's id), one by an earlier one (the wamid).
    from chatbot import statuses
    from chatbot.whatsapp import parser
    status = parser.StatusUpdate(phone_number_id=PNID, wamid="wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEkZPUk1FUg==",
                                 status="read", timestamp=timezone.now(), recipient_id=NUMBER, recipient_user_id="",
                                 errors=[], pricing={}, conversation={}, biz_opaque_callback_data="",
                                 raw={"recipient_id": NUMBER})
    statuses.keep_pending_status(status, timezone.now())
    tasks.apply_pending_statuses.enqueue(wamid, 0)
    DBTaskResult.objects.create(args_kwargs={"args": [1], "kwargs": {}}, task_path="chatbot.tasks.mark_read",
                                backend_name="default", run_after=timezone.now(), status="FAILED",
                                exception_class_path="builtins.ValueError",
                                traceback=f"ValueError: no message for {NUMBER} ({wamid})")
    WebhookEvent.objects.filter(body__contains=NUMBER).update(
        result="failed", error=f"IntegrityError: Key (wa_id)=({NUMBER}) already exists.")
    AccountEvent.objects.create(field="errors", payload={"message_id": wamid, "title": "Maria Conceição"})
    # A file downloaded again: the earlier code left the first copy on disk, pointed at by nothing.
    image = maria.messages.exclude(media_file="").get()
    default_storage.save(f"media/2026/01/{image.pk}-0ld0c0py.jpg", ContentFile(b"\xff\xd8 jpeg of Maria"))
    Message.objects.filter(pk=image.pk).update(media_status="failed", timestamp=timezone.now())
    image.refresh_from_db()
    fake_graph.add_media("1234567890", b"\xff\xd8 jpeg of Maria, again", "image/jpeg")
    assert media.retry(image)
    run_tasks()
    image.refresh_from_db()
    assert image.media_status == "ready"
    # The API read by an integrator, logged by Django's request logger (404 after the erasure).
    exporter = ApiToken.objects.create_token("crm", scopes=["export"])[1]
    assert client.get(f"/chatbot/api/contacts/{NUMBER}/", HTTP_AUTHORIZATION=f"Bearer {exporter}").status_code == 200


def test_nothing_of_the_contact_survives_anywhere(maria, client, admin_client, fake_graph, run_tasks, caplog,
                                                 django_capture_on_commit_callbacks):
    from chatbot import logs

    caplog.set_level(logging.INFO)
    spread_everywhere(maria, client, admin_client, fake_graph, run_tasks)
    assert {model for model, _pk, _needle in traces(PERSONAL)} >= {"LogEntry", "DBTaskResult", "AccountEvent"}
    files_before = stored_files()
    assert len([name for name in files_before if "jpeg" in name or name.endswith(".jpg")]) >= 2

    with django_capture_on_commit_callbacks(execute=True):
        lgpd.anonymize(maria)
    client.get(f"/chatbot/api/contacts/{NUMBER}/")  # asked again, after: logged as a 401/404

    assert traces(PERSONAL) == []
    assert stored_files() == [], "files of the contact are left under MEDIA_ROOT"
    # Every line we wrote, as our handlers write it (secrets and URLs redacted).
    lines = []
    for record in caplog.records:
        logs.RedactFilter().filter(record)
        lines.append(record.getMessage() + (record.exc_text or ""))
    assert [(needle, line) for line in lines for needle in PERSONAL if needle in line] == []


def test_other_customers_in_the_same_webhook_are_kept(maria):
    lgpd.anonymize(maria)

    shared = WebhookEvent.objects.get(body__contains=OTHER)
    body = json.loads(shared.body)
    value = body["entry"][0]["changes"][0]["value"]
    assert [m["from"] for m in value["messages"]] == [OTHER]
    assert [c["wa_id"] for c in value["contacts"]] == [OTHER]
    assert Contact.objects.get(wa_id=OTHER).name == "Pedro"
    assert Message.objects.get(wamid="wamid.PEDRO1").text == "Bom dia"


def test_the_number_no_longer_finds_the_contact(maria, client):
    lgpd.anonymize(maria)

    assert contacts.find(NUMBER) is None
    assert contacts.find("551187654321") is None  # the other Brazilian form
    assert contacts.find(NUMBER) is None  # nor does the API, which looks it up the same way
    # A new message from the number is a new customer, with nothing of the old one.
    fresh = contacts.for_recipient(NUMBER)
    assert fresh.pk != maria.pk and fresh.messages.count() == 0


def test_anonymize_is_logged_without_personal_data_and_audited(maria):
    operator = User.objects.create_user("ana", password="x" * 12)
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("chatbot.lgpd")
    logger.addHandler(handler)
    try:
        lgpd.anonymize(maria, by=operator)
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert f"contact {maria.pk} anonymized by user {operator.pk}" in line
    assert not [needle for needle in PERSONAL if needle in line]
    entry = LogEntry.objects.get(user=operator)
    assert entry.object_id == str(maria.pk)


def test_anonymize_is_irreversible_and_can_run_twice(maria):
    lgpd.anonymize(maria)
    lgpd.anonymize(Contact.objects.get(pk=maria.pk))
    assert traces(PERSONAL) == []


def test_anonymize_fails_what_was_still_queued_and_drops_replayable_answers(maria):
    token, _plaintext = ApiToken.objects.create_token("ERP")
    queued = Message.objects.create(phone_number=PhoneNumber.objects.default(), contact=maria, direction="out",
                                    source="api", type="text", text="Seu boleto", status="queued")
    IdempotencyKey.objects.create(token=token, key="k1", request_hash="h", status_code=202,
                                  response={"id": queued.pk, "status": "queued", "to": NUMBER, "type": "text"})
    PendingStatus.objects.create(wamid="wamid.MARIA2", status="read", timestamp=timezone.now(),
                                 payload={"recipient_id": NUMBER})

    lgpd.anonymize(maria)

    queued.refresh_from_db()
    assert (queued.status, queued.text) == ("failed", "")
    assert not IdempotencyKey.objects.exists()
    assert not PendingStatus.objects.exists()


# --- Retention ---------------------------------------------------------------------------------


def make_message(contact, days_ago, name=None, status="received"):
    moment = timezone.now() - timedelta(days=days_ago)
    message = Message.objects.create(phone_number=PhoneNumber.objects.default(), contact=contact,
                                     direction="in" if status == "received" else "out", source="customer",
                                     type="image" if name else "text", text=f"{days_ago} days ago", status=status,
                                     timestamp=moment)
    if name:
        message.media_file.save(name, ContentFile(b"image"), save=True)
    return message


def make_task(days_ago, status):
    moment = timezone.now() - timedelta(days=days_ago)
    return DBTaskResult.objects.create(args_kwargs={"args": [], "kwargs": {}}, task_path="chatbot.tasks.mark_read",
                                       backend_name="default", run_after=moment, status=status,
                                       finished_at=moment if status in ("SUCCESSFUL", "FAILED") else None)


def test_purge_drops_what_is_past_the_retention_and_keeps_the_rest(settings, django_capture_on_commit_callbacks):
    settings.STORE_MESSAGE_UP_TO = 30
    contact = Contact.objects.create(wa_id=NUMBER, name="Maria", opted_out=True)
    old = [make_message(contact, 40, name=f"old{i}.jpg") for i in range(3)] + [make_message(contact, 31)]
    old_queued = make_message(contact, 40, status="queued")
    recent = make_message(contact, 2, name="recent.jpg")
    old_files = [message.media_file.name for message in old if message.media_file]
    old_event = WebhookEvent.objects.create(body="{}", result="processed",
                                            received_at=timezone.now() - timedelta(days=31))
    old_pending_event = WebhookEvent.objects.create(body="{}", received_at=timezone.now() - timedelta(days=31))
    recent_event = WebhookEvent.objects.create(body="{}", result="failed")
    old_tasks = [make_task(40, "SUCCESSFUL"), make_task(40, "FAILED")]
    ready_task, recent_task = make_task(40, "READY"), make_task(1, "SUCCESSFUL")
    token, _plaintext = ApiToken.objects.create_token("ERP")
    IdempotencyKey.objects.create(token=token, key="old", request_hash="h", status_code=202, response={},
                                  created_at=timezone.now() - timedelta(days=2))
    IdempotencyKey.objects.create(token=token, key="new", request_hash="h", status_code=202, response={})
    PendingStatus.objects.create(wamid="wamid.X", status="read", timestamp=timezone.now(),
                                 received_at=timezone.now() - timedelta(days=31))
    session = Session.objects.create(contact=contact, phone_number=PhoneNumber.objects.default(), status="closed",
                                     closed_at=timezone.now() - timedelta(days=35), data={"cpf": "1"})

    with django_capture_on_commit_callbacks(execute=True):
        counts = lgpd.purge(batch=2)

    assert counts == {"messages": 4, "media_files": 3, "webhook_events": 1, "tasks": 2, "pending_statuses": 1,
                      "idempotency_keys": 1, "event_deliveries": 0, "sessions": 1}
    assert set(Message.objects.values_list("pk", flat=True)) == {old_queued.pk, recent.pk}
    assert not any(default_storage.exists(name) for name in old_files)
    assert default_storage.exists(recent.media_file.name)
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {old_pending_event.pk, recent_event.pk}
    assert old_event.pk not in WebhookEvent.objects.values_list("pk", flat=True)
    assert set(DBTaskResult.objects.values_list("pk", flat=True)) == {ready_task.pk, recent_task.pk}
    assert not DBTaskResult.objects.filter(pk__in=[task.pk for task in old_tasks]).exists()
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert not PendingStatus.objects.exists()
    session.refresh_from_db()
    assert session.data == {}
    # Contacts stay: an opt-out must be remembered.
    assert Contact.objects.get(pk=contact.pk).opted_out is True
    # A second run finds nothing.
    assert set(lgpd.purge().values()) == {0}


def test_purge_days_overrides_the_setting_and_reports_progress():
    contact = Contact.objects.create(wa_id=NUMBER)
    for _i in range(5):
        make_message(contact, 10)
    make_message(contact, 1)
    seen = []

    def progress(iterable, total, label):
        for item in iterable:
            seen.append((label, total))
            yield item

    counts = lgpd.purge(7, batch=2, progress=progress)

    assert counts["messages"] == 5
    assert Message.objects.count() == 1
    assert seen.count(("messages", 3)) == 3

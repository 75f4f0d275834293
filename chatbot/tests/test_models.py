from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from chatbot.models import ApiToken, Contact, Message, PhoneNumber, Session, hash_token


@pytest.fixture
def number(db):
    return PhoneNumber.objects.default()


@pytest.fixture
def contact(db):
    return Contact.objects.create(wa_id="5511987654321", name="Maria")


def make_message(number, contact, **fields):
    return Message.objects.create(
        phone_number=number,
        contact=contact,
        direction="in",
        source="customer",
        type="text",
        status="received",
        **fields,
    )


def test_default_number_comes_from_the_environment(settings, db):
    number = PhoneNumber.objects.default()
    assert number.phone_number_id == settings.WHATSAPP_PHONE_NUMBER_ID
    assert number.waba_id == settings.WHATSAPP_BUSINESS_ACCOUNT_ID
    assert PhoneNumber.objects.default() == number
    assert PhoneNumber.objects.count() == 1


def test_sandbox_without_a_number_gets_a_local_one(settings, db):
    settings.WHATSAPP_PHONE_NUMBER_ID = ""
    assert PhoneNumber.objects.default().phone_number_id == "sandbox"


def test_duplicate_wamid_is_refused(number, contact):
    make_message(number, contact, wamid="wamid.HBgLNTUxMTk4NzY1NDMyMRUCABIYFDNBM0Y1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_message(number, contact, wamid="wamid.HBgLNTUxMTk4NzY1NDMyMRUCABIYFDNBM0Y1")
    assert Message.objects.count() == 1


def test_queued_messages_without_wamid_do_not_collide(number, contact):
    make_message(number, contact, wamid=None)
    make_message(number, contact, wamid=None)
    assert Message.objects.filter(wamid__isnull=True).count() == 2


def test_one_open_session_per_contact_and_number(number, contact):
    Session.objects.create(contact=contact, phone_number=number, status="bot")
    with pytest.raises(IntegrityError), transaction.atomic():
        Session.objects.create(contact=contact, phone_number=number, status="waiting")


def test_closed_sessions_do_not_block_a_new_one(number, contact):
    Session.objects.create(contact=contact, phone_number=number, status="closed")
    Session.objects.create(contact=contact, phone_number=number, status="closed")
    Session.objects.create(contact=contact, phone_number=number, status="open")
    other_number = PhoneNumber.objects.create(phone_number_id="999")
    Session.objects.create(contact=contact, phone_number=other_number, status="bot")
    assert Session.objects.exclude(status="closed").count() == 2


def test_contacts_are_unique_by_wa_id_and_by_user_id_when_present(db):
    Contact.objects.create(wa_id="5511911112222")
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(wa_id="5511911112222")
    Contact.objects.create(wa_id="", user_id="BR.13491208655302741918")
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(wa_id="", user_id="BR.13491208655302741918")
    # Username users may arrive with an empty wa_id; several of them are different people.
    Contact.objects.create(wa_id="", user_id="BR.999")
    assert Contact.objects.filter(wa_id="").count() == 2


def test_customer_service_window(contact):
    now = timezone.now()
    assert not contact.window_open(now)
    contact.last_inbound_at = now - timedelta(hours=23, minutes=59)
    assert contact.window_open(now)
    contact.last_inbound_at = now - timedelta(hours=24)
    assert not contact.window_open(now)


def test_api_tokens_are_stored_hashed(db):
    token, plaintext = ApiToken.objects.create_token("ERP")
    stored = ApiToken.objects.get(pk=token.pk)
    assert plaintext not in {stored.token_hash, stored.prefix, stored.name}
    assert stored.token_hash == hash_token(plaintext)
    assert ApiToken.objects.authenticate(plaintext) == token
    assert ApiToken.objects.authenticate(plaintext + "x") is None
    stored.revoked_at = timezone.now()
    stored.save()
    assert ApiToken.objects.authenticate(plaintext) is None


@pytest.mark.django_db(transaction=True)
def test_answers_kept_in_the_bot_state_move_to_the_sessions_data():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    before = [("chatbot", "0003_department_restricted_token_scopes")]
    after = [("chatbot", "0004_answers_in_session_data")]
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        number = apps.get_model("chatbot", "PhoneNumber").objects.create(phone_number_id="1")
        contact = apps.get_model("chatbot", "Contact").objects.create(wa_id="5511987654321")
        session = apps.get_model("chatbot", "Session").objects.create(
            contact=contact, phone_number=number, bot_state={"greeted": True, "answers": {"pedido": "#4521"}},
            data={"cpf": "1"})
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        session = executor.loader.project_state(after).apps.get_model("chatbot", "Session").objects.get(
            pk=session.pk)
        assert (session.bot_state, session.data) == ({"greeted": True}, {"cpf": "1", "pedido": "#4521"})
    finally:  # the tests after this one need every migration
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

import pytest
from django.contrib import admin
from django.urls import reverse

from chatbot.models import ApiToken, Contact, Message, PhoneNumber, Session, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(db):
    number = PhoneNumber.objects.default()
    contact = Contact.objects.create(wa_id="5511987654321", name="Zé <b>Silva</b>")
    session = Session.objects.create(contact=contact, phone_number=number)
    Message.objects.create(
        phone_number=number,
        contact=contact,
        session=session,
        direction="in",
        source="customer",
        type="text",
        text="Olá",
        status="received",
        wamid="wamid.ABC",
    )
    WebhookEvent.objects.create(body='{"object": "whatsapp_business_account"}', result="processed")
    ApiToken.objects.create_token("ERP")


def test_every_chatbot_model_is_registered():
    from django.apps import apps

    for model in apps.get_app_config("chatbot").get_models():
        assert admin.site.is_registered(model), model


@pytest.mark.parametrize("query", ["", "?q=5511987654321", "?q=wamid.ABC", "?q=Maria"])
def test_changelists_search(admin_client, conversation, query):
    from django.apps import apps

    for model in apps.get_app_config("chatbot").get_models():
        url = reverse(f"admin:chatbot_{model._meta.model_name}_changelist") + query
        assert admin_client.get(url, follow=True).status_code == 200, url


def test_bot_settings_open_straight_on_their_one_row(admin_client):
    response = admin_client.get(reverse("admin:chatbot_botsettings_changelist"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:chatbot_botsettings_change", args=[1])
    assert "Olá, {name}!" in response.content.decode()


def test_a_bad_regular_expression_is_refused_in_the_admin(admin_client):
    response = admin_client.post(reverse("admin:chatbot_keywordrule_add"), {
        "match": "regex", "pattern": "(unclosed", "action": "reply", "reply_text": "x", "position": 0,
        "is_active": "on"})
    assert response.status_code == 200
    assert "regular expression" in response.content.decode() or "expressão regular" in response.content.decode()


def test_message_search_finds_by_wamid_and_filters(admin_client, conversation):
    url = reverse("admin:chatbot_message_changelist")
    assert b"wamid.ABC" in admin_client.get(url + "?q=wamid.ABC").content
    assert b"wamid.ABC" in admin_client.get(url + "?direction__exact=in&status__exact=received").content
    assert b"wamid.ABC" not in admin_client.get(url + "?direction__exact=out").content


def test_names_are_escaped(admin_client, conversation):
    content = admin_client.get(reverse("admin:chatbot_contact_changelist")).content
    assert b"<b>Silva</b>" not in content
    assert b"&lt;b&gt;Silva&lt;/b&gt;" in content


def test_api_tokens_cannot_be_added_in_the_admin(admin_client):
    assert admin_client.get(reverse("admin:chatbot_apitoken_add")).status_code == 403


# --- Internal tables: superusers only ---

INTERNAL = ["chatbot_idempotencykey", "chatbot_ratelimit", "chatbot_workerbeat", "chatbot_pendingstatus",
            "chatbot_dailystats", "chatbot_accountevent", "chatbot_webhookevent", "django_tasks_database_dbtaskresult"]


@pytest.fixture
def staff_client(client, django_user_model):
    """A staff user granted every permission there is: only being a superuser is missing."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("gerente", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    client.force_login(user)
    return client


def test_staff_neither_see_nor_open_the_internal_tables(staff_client):
    index = staff_client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:chatbot_contact_changelist") in index  # the permissions do work
    for name in INTERNAL:
        url = reverse(f"admin:{name}_changelist")
        assert url not in index, name
        assert staff_client.get(url).status_code == 403, name
    assert staff_client.get(reverse("admin:app_list", args=["django_tasks_database"])).status_code == 404


def test_superusers_see_and_open_the_internal_tables(admin_client):
    index = admin_client.get(reverse("admin:index")).content.decode()
    for name in INTERNAL:
        url = reverse(f"admin:{name}_changelist")
        assert url in index, name
        assert admin_client.get(url).status_code == 200, name


def test_task_results_stay_read_only_and_speak_our_catalog(admin_client):
    from django.apps import apps
    from django.utils.functional import Promise
    from django_tasks_db.models import DBTaskResult

    model_admin = admin.site._registry[DBTaskResult]
    request = admin_client.get(reverse("admin:index")).wsgi_request
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    # Lazy, so each request's language picks the name from our catalog.
    assert isinstance(DBTaskResult._meta.verbose_name_plural, Promise)
    assert isinstance(apps.get_app_config("django_tasks_database").verbose_name, Promise)


def test_the_bot_settings_admin_has_every_text_of_the_dashboard_form():
    from chatbot.dashboard.business_forms import BotSettingsForm
    from chatbot.models import BotSettings

    fields = [name for _title, options in admin.site._registry[BotSettings].fieldsets for name in options["fields"]]
    assert fields == BotSettingsForm.Meta.fields
    assert {"transfer_text", "return_to_bot_text"} <= set(fields)

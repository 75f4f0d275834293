"""The business settings pages (dashboard/business.py): administrators keep the bot's texts, the
business's rows and the team's accounts there; nobody else may."""

import re
from datetime import date, time

import pytest
from django.contrib.messages import SUCCESS, get_messages
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from chatbot.dashboard.business_forms import BotSettingsForm
from chatbot.dashboard.permissions import OPERATORS_GROUP
from chatbot.models import (
    BotSettings,
    BusinessHours,
    CannedReply,
    Contact,
    ContactAttribute,
    Department,
    Holiday,
    Label,
    OperatorProfile,
    PhoneNumber,
    Session,
)

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
PASSWORD = "troque-esta-senha-42"

# kind: (model, the new row's POST, an edit's POST, the edited row's expected values)
KINDS = {
    "hours": (BusinessHours, {"weekday": 0, "opens": "08:00", "closes": "18:00"}, {"closes": "17:30"},
              {"closes": time(17, 30)}),
    "holidays": (Holiday, {"date": "2025-12-25", "name": "Natal"}, {"date": "2025-12-24"},
                 {"date": date(2025, 12, 24)}),
    "departments": (Department, {"name": "Vendas", "position": 1, "is_active": "on", "assignment": "off"},
                    {"restricted": "on", "assignment": "least_busy"},
                    {"restricted": True, "is_active": True, "assignment": "least_busy"}),
    "canned": (CannedReply, {"title": "Boas-vindas", "text": "Olá, {first_name}!", "position": 0},
               {"text": "Oi, {name}."}, {"text": "Oi, {name}."}),
    "labels": (Label, {"name": "VIP", "color": Label.Color.GREEN, "position": 0}, {"color": Label.Color.RED},
               {"color": Label.Color.RED}),
    "attributes": (ContactAttribute, {"key": "cpf", "name": "CPF", "position": 0},
                   {"name": "CPF do titular", "key": "outra"}, {"name": "CPF do titular", "key": "cpf"}),
}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def url(name, *args):
    return reverse(f"chatbot:dashboard-settings{name}", args=args)


def succeeded(response):
    return [message.level for message in get_messages(response.wsgi_request)] == [SUCCESS]


def forms(pk_of):
    """Every settings page that takes a POST, given one row's pk per kind and one operator's id."""
    found = [url("-bot"), url("-operator-new"), url("-operator", pk_of["operator"])]
    for kind in KINDS:
        found += [url("-new", kind), url("-edit", kind, pk_of[kind]), url("-delete", kind, pk_of[kind])]
    return found


def pages(pk_of):
    """Every settings page."""
    return [url(""), url("-operators"), *[url("-list", kind) for kind in KINDS], *forms(pk_of)]


@pytest.fixture
def rows(operator):
    """One row of each kind, names carrying markup."""
    return {"operator": operator.pk,
            "hours": BusinessHours.objects.create(weekday=0, opens=time(8), closes=time(18)).pk,
            "holidays": Holiday.objects.create(date=date(2025, 1, 1), name=XSS).pk,
            "departments": Department.objects.create(name=XSS).pk,
            "canned": CannedReply.objects.create(title=XSS, text=XSS).pk,
            "labels": Label.objects.create(name=XSS).pk,
            "attributes": ContactAttribute.objects.create(key="cpf", name=XSS).pk}


# --- Who may --------------------------------------------------------------------------------------


def test_anonymous_visitors_go_to_the_login_page(client, rows):
    for page in pages(rows):
        response = client.get(page)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), page


def test_operators_who_are_not_administrators_are_refused(client, operator, rows):
    client.force_login(operator)
    for page in pages(rows):
        assert client.get(page).status_code == 403, page
    for page in forms(rows):
        assert client.post(page, {"name": "x"}).status_code == 403, page
    assert Department.objects.count() == 1 and Label.objects.get().name == XSS


def test_every_page_renders_without_inline_style_or_script(as_owner, rows):
    """The pages' Content-Security-Policy allows neither; names are escaped."""
    invalid = as_owner.post(url("-new", "hours"), {"weekday": 9})
    for page, response in [(page, as_owner.get(page)) for page in pages(rows)] + [("invalid", invalid)]:
        html = response.content.decode()
        assert response.status_code == 200, page
        assert "style=" not in html, page
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [], page
        assert XSS not in html, page


def test_csrf_is_enforced(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(url("-new", "labels"), {"name": "VIP", "color": Label.Color.GREEN, "position": 0}) \
        .status_code == 403
    assert not Label.objects.exists()


# --- The business's rows ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_administrators_create_edit_and_delete_each_kind(as_owner, kind):
    model, data, change, expected = KINDS[kind]
    response = as_owner.post(url("-new", kind), data)
    assert response.status_code == 302 and response.url == url("-list", kind) and succeeded(response)
    row = model.objects.get()
    assert as_owner.get(url("-list", kind)).status_code == 200

    response = as_owner.post(url("-edit", kind, row.pk), {**data, **change})
    assert response.status_code == 302 and succeeded(response)
    row.refresh_from_db()
    assert {field: getattr(row, field) for field in expected} == expected

    assert as_owner.get(url("-delete", kind, row.pk)).status_code == 200
    assert model.objects.filter(pk=row.pk).exists()  # the confirmation page deletes nothing
    response = as_owner.post(url("-delete", kind, row.pk))
    assert response.status_code == 302 and response.url == url("-list", kind) and succeeded(response)
    assert not model.objects.exists()


def test_a_department_gets_its_operators(as_owner, operator):
    as_owner.post(url("-new", "departments"), {"name": "Suporte", "position": 0, "is_active": "on",
                                               "assignment": "round_robin", "operators": [operator.pk]})
    assert list(Department.objects.get().operators.all()) == [operator]


def test_a_department_with_conversations_is_deactivated_not_deleted(as_owner):
    department = Department.objects.create(name="Financeiro", restricted=True)
    Session.objects.create(contact=Contact.objects.create(wa_id="5511987654321"),
                           phone_number=PhoneNumber.objects.default(), department=department)
    response = as_owner.post(url("-delete", "departments", department.pk))
    assert response.status_code == 302 and succeeded(response)
    department.refresh_from_db()
    assert department.is_active is False and department.sessions.count() == 1


def test_a_deleted_label_leaves_its_contacts(as_owner):
    label = Label.objects.create(name="VIP")
    contact = Contact.objects.create(wa_id="5511987654321")
    contact.labels.add(label)
    as_owner.post(url("-delete", "labels", label.pk))
    assert not contact.labels.exists()


@pytest.mark.parametrize("kind, data", [
    ("hours", {"weekday": 0, "opens": "18:00", "closes": "08:00"}),
    ("hours", {"weekday": 9, "opens": "08:00", "closes": "18:00"}),
    ("holidays", {"date": "31/02/2025", "name": "Nunca"}),
    ("labels", {"name": "", "color": "#ffffff", "position": 0}),
    ("attributes", {"key": "não é slug", "name": "X", "position": 0}),
    ("canned", {"title": "x", "text": "", "position": -1}),
])
def test_invalid_input_shows_errors_and_changes_nothing(as_owner, kind, data):
    response = as_owner.post(url("-new", kind), data)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert 'class="errorlist' in response.content.decode()
    assert not KINDS[kind][0].objects.exists()


def test_a_second_holiday_on_the_same_day_is_refused(as_owner):
    Holiday.objects.create(date=date(2025, 12, 25), name="Natal")
    response = as_owner.post(url("-new", "holidays"), {"date": "2025-12-25", "name": "Outro"})
    assert response.status_code == 200 and "date" in response.context["form"].errors
    assert Holiday.objects.count() == 1


@pytest.mark.parametrize("name, args", [("-edit", ("labels", 999)), ("-delete", ("labels", 999)),
                                        ("-new", ("nothing",)), ("-operator", (999,))])
def test_unknown_rows_and_kinds_are_404(as_owner, name, args):
    assert as_owner.post(url(name, *args), {"name": "x"}).status_code == 404
    assert as_owner.get(url("-list", "nothing")).status_code == 404


# --- The bot's texts ----------------------------------------------------------------------------


def bot_texts(**changes):
    return {**model_to_dict(BotSettings.load(), fields=BotSettingsForm.Meta.fields), **changes}


def test_the_form_has_every_bot_setting():
    editable = {field.name for field in BotSettings._meta.fields if field.editable and not field.primary_key}
    assert set(BotSettingsForm.Meta.fields) == editable


def test_bot_texts_are_saved(as_owner):
    assert as_owner.get(url("-bot")).status_code == 200
    response = as_owner.post(url("-bot"), bot_texts(greeting="Oi, {name}!", transfer_text="Com *{department}*."))
    assert response.status_code == 302 and succeeded(response)
    settings = BotSettings.load()
    assert (settings.greeting, settings.transfer_text) == ("Oi, {name}!", "Com *{department}*.")


def test_invalid_bot_texts_change_nothing(as_owner):
    greeting = BotSettings.load().greeting
    response = as_owner.post(url("-bot"), bot_texts(greeting="Oi", fallback_limit="muitos"))
    assert response.status_code == 200 and "fallback_limit" in response.context["form"].errors
    assert BotSettings.load().greeting == greeting


# --- The team -----------------------------------------------------------------------------------


def new_operator(**changes):
    return {"username": "bia", "first_name": "Bia", "email": "bia@example.com", "password1": PASSWORD,
            "password2": PASSWORD, "max_conversations": 5, **changes}


def test_a_new_operator_can_log_in_in_the_group_and_departments(as_owner, django_user_model):
    department = Department.objects.create(name="Suporte")
    response = as_owner.post(url("-operator-new"), new_operator(departments=[department.pk]))
    assert response.status_code == 302 and response.url == url("-operators") and succeeded(response)
    user = django_user_model.objects.get(username="bia")
    assert list(user.groups.values_list("name", flat=True)) == [OPERATORS_GROUP]
    assert list(user.departments.all()) == [department]
    assert user.is_staff is False
    assert Client().login(username="bia", password=PASSWORD)
    assert "bia" in as_owner.get(url("-operators")).content.decode()


def test_a_new_operators_password_goes_through_the_validators(as_owner, settings, django_user_model):
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}]
    response = as_owner.post(url("-operator-new"), new_operator(password1="curta", password2="curta"))
    assert response.status_code == 200 and "password2" in response.context["form"].errors
    response = as_owner.post(url("-operator-new"), new_operator(password2="outra-senha-qualquer"))
    assert response.status_code == 200 and "password2" in response.context["form"].errors
    assert not django_user_model.objects.filter(username="bia").exists()


def test_an_operator_is_edited_and_deactivated(as_owner, operator):
    department = Department.objects.create(name="Vendas")
    response = as_owner.post(url("-operator", operator.pk), {"first_name": "Ana Paula", "email": "ana@example.com",
                                                             "departments": [department.pk], "is_staff": "on",
                                                             "max_conversations": 3})
    assert response.status_code == 302 and succeeded(response)
    operator.refresh_from_db()
    assert (operator.first_name, operator.is_staff, operator.is_active) == ("Ana Paula", True, False)
    assert list(operator.departments.all()) == [department]
    assert OperatorProfile.objects.get(user=operator).max_conversations == 3
    assert not Client().login(username="ana", password="x")


@pytest.mark.parametrize("change, field", [({"is_active": "on"}, "is_staff"), ({"is_staff": "on"}, "is_active")])
def test_administrators_cannot_lock_themselves_out(as_owner, owner, change, field):
    response = as_owner.post(url("-operator", owner.pk), {"first_name": "Dono", **change})
    assert response.status_code == 200 and field in response.context["form"].errors
    owner.refresh_from_db()
    assert owner.is_staff and owner.is_active and owner.first_name == ""


def test_only_a_superuser_edits_a_superuser(as_owner, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="x")
    assert as_owner.post(url("-operator", root.pk), {"first_name": "x"}).status_code == 404
    assert "root" not in as_owner.get(url("-operators")).content.decode()
    root.refresh_from_db()
    assert root.is_active and root.first_name == ""

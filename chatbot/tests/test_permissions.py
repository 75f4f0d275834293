"""Who sees what (chatbot/permissions.py): a restricted department's conversations are for its
operators, whoever a conversation is assigned to, and the administrators."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chatbot.dashboard.permissions import OPERATORS_GROUP
from chatbot.models import Contact, Department, Message, Note, PhoneNumber, Session

pytestmark = pytest.mark.django_db


def operator(django_user_model, name, **extra):
    user = django_user_model.objects.create_user(name, password="x", **extra)
    user.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def team(django_user_model):
    """Ana works in Suporte (restricted), Bruno in Vendas; Carla is an administrator."""
    suporte = Department.objects.create(name="Suporte", restricted=True)
    vendas = Department.objects.create(name="Vendas")
    ana, bruno = operator(django_user_model, "ana"), operator(django_user_model, "bruno")
    carla = operator(django_user_model, "carla", is_staff=True)
    suporte.operators.add(ana.user)
    vendas.operators.add(bruno.user)
    return {"ana": ana, "bruno": bruno, "carla": carla, "suporte": suporte, "vendas": vendas}


def conversation(department, wa_id, **fields):
    contact = Contact.objects.create(wa_id=wa_id, name=f"Cliente {wa_id[-2:]}", last_inbound_at=timezone.now())
    session = Session.objects.create(contact=contact, phone_number=PhoneNumber.objects.default(), department=department,
                                     status=Session.Status.WAITING, waiting_since=timezone.now(), **fields)
    Message.objects.create(phone_number=session.phone_number, contact=contact, session=session, direction="in",
                           source="customer", type="image", status="received", text="segredo do suporte",
                           media_status="ready", media_mime_type="image/png", media_file="media/x.png")
    return session


def urls(session):
    message = session.messages.get()
    gets = [reverse("chatbot:dashboard-conversation", args=[session.pk]),
            reverse("chatbot:dashboard-conversation-updates", args=[session.pk]),
            reverse("chatbot:media-file", args=[message.pk])]
    posts = {
        reverse("chatbot:dashboard-conversation-reply", args=[session.pk]): {"text": "oi"},
        reverse("chatbot:dashboard-conversation-template", args=[session.pk]): {"template": "1"},
        reverse("chatbot:dashboard-conversation-action", args=[session.pk]): {"action": "take"},
        reverse("chatbot:dashboard-conversation-note", args=[session.pk]): {"text": "nota"},
        reverse("chatbot:dashboard-media-retry", args=[message.pk]): {},
    }
    return gets, posts


def test_an_operator_outside_a_restricted_department_can_neither_see_nor_act(team):
    session = conversation(team["suporte"], "5511900000001")
    gets, posts = urls(session)
    bruno = team["bruno"]
    for url in gets:
        assert bruno.get(url).status_code == 404, url
    for url, data in posts.items():
        assert bruno.post(url, data).status_code == 404, url
    session.refresh_from_db()
    assert (session.status, session.assigned_to) == ("waiting", None)
    assert not Note.objects.exists() and session.messages.count() == 1
    for page in (reverse("chatbot:dashboard-conversations"), reverse("chatbot:dashboard"),
                 reverse("chatbot:dashboard-contact", args=[session.contact_id])):
        assert reverse("chatbot:dashboard-conversation", args=[session.pk]) not in bruno.get(page).content.decode()


@pytest.mark.parametrize("who", ["ana", "carla"])
def test_its_operators_and_the_administrators_see_and_act(team, who):
    session = conversation(team["suporte"], "5511900000002")
    client = team[who]
    page = client.get(reverse("chatbot:dashboard-conversations")).content.decode()
    assert reverse("chatbot:dashboard-conversation", args=[session.pk]) in page
    assert client.get(reverse("chatbot:dashboard-conversation", args=[session.pk])).status_code == 200
    client.post(reverse("chatbot:dashboard-conversation-note", args=[session.pk]), {"text": "visto"})
    assert Note.objects.filter(session=session).count() == 1


def test_unrestricted_departments_and_the_bots_conversations_are_everyones(team):
    in_sales, with_bot = conversation(team["vendas"], "5511900000003"), conversation(None, "5511900000004")
    for session in (in_sales, with_bot):
        assert team["ana"].get(reverse("chatbot:dashboard-conversation", args=[session.pk])).status_code == 200


def test_a_conversation_assigned_to_someone_outside_the_department_is_theirs(team):
    session = conversation(team["suporte"], "5511900000005", assigned_to=team["bruno"].user)
    assert team["bruno"].get(reverse("chatbot:dashboard-conversation", args=[session.pk])).status_code == 200


def test_transferring_out_of_sight_lands_on_the_list(team):
    session = conversation(team["vendas"], "5511900000006")
    response = team["bruno"].post(reverse("chatbot:dashboard-conversation-action", args=[session.pk]),
                                  {"action": "transfer", "department": team["suporte"].pk})
    assert response["Location"] == reverse("chatbot:dashboard-conversations")
    session.refresh_from_db()
    assert session.department == team["suporte"]

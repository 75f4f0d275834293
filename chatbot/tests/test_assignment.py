"""Automatic assignment (chatbot/assignment.py): the policies, the limits, when queues are handed
out (a handoff, a transfer, an operator freed or back online, the worker's sweep), and the races
between any number of processes on PostgreSQL."""

import ast
import itertools
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from chatbot import assignment, conversation, handling, inbound, presence
from chatbot.models import Contact, Department, Message, OperatorProfile, PhoneNumber, Session
from chatbot.tests.helpers import concurrently, make_operator, post_signed
from chatbot.whatsapp.webhook import customer_message

ROOT = Path(__file__).resolve().parents[2]
numbers = itertools.count()
on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql",
                                   reason="real concurrent transactions need PostgreSQL")


def team(department, *names, limit=5, now=None, **profile):
    """Operators of `department`, online at `now` (a pulse with input), each with `limit`."""
    now = now or timezone.now()
    users = []
    for name in names:
        user = get_user_model().objects.filter(username=name).first() or make_operator(get_user_model(), name)
        department.operators.add(user)
        OperatorProfile.objects.update_or_create(user=user, defaults={
            "chosen_presence": "online", "presence": "online", "seen_at": now, "active_at": now,
            "max_conversations": limit, **profile})
        users.append(user)
    return users


def waiting(department, count=1, now=None):
    """`count` customers waiting in `department`, the first the longest."""
    now = now or timezone.now()
    number = PhoneNumber.objects.default()
    sessions = []
    for index in range(count):
        contact = Contact.objects.create(wa_id=f"55119{next(numbers):08d}", name=f"Cliente {index}",
                                         last_inbound_at=now)
        sessions.append(Session.objects.create(contact=contact, phone_number=number, status="waiting",
                                               department=department,
                                               waiting_since=now - timedelta(seconds=count - index)))
    return sessions


def holder(session):
    session.refresh_from_db()
    return session.assigned_to.username if session.assigned_to_id else None


def open_count(user):
    return Session.objects.filter(assigned_to=user, status="open").count()


# --- Policies and limits -------------------------------------------------------------------


@pytest.mark.django_db
def test_round_robin_gives_the_next_to_whoever_was_given_one_longest_ago():
    vendas = Department.objects.create(name="Vendas", assignment="round_robin")
    now = timezone.now()
    ana, bia, caio = team(vendas, "ana", "bia", "caio", limit=10)
    OperatorProfile.objects.filter(user=ana).update(last_assigned_at=now - timedelta(minutes=1))
    OperatorProfile.objects.filter(user=bia).update(last_assigned_at=now - timedelta(minutes=5))
    sessions = waiting(vendas, 7)

    given = assignment.hand_out(departments=[vendas.pk])

    assert [holder(session) for session in sessions] == ["caio", "bia", "ana", "caio", "bia", "ana", "caio"]
    assert len(given) == 7
    first = Session.objects.get(pk=sessions[0].pk)
    assert (first.status, first.assigned_at is not None, first.first_response_at) == ("open", True, None)
    # The order carries over to the next hand-out: bia, then ana.
    later = waiting(vendas, 2)
    assignment.hand_out(departments=[vendas.pk])
    assert [holder(session) for session in later] == ["bia", "ana"]


@pytest.mark.django_db
def test_least_busy_gives_the_next_to_whoever_has_fewest_open_conversations():
    suporte = Department.objects.create(name="Suporte", assignment="least_busy")
    ana, bia, caio = team(suporte, "ana", "bia", "caio", limit=10)
    for user, count in ((ana, 3), (bia, 0), (caio, 1)):
        for session in waiting(suporte, count):
            Session.objects.filter(pk=session.pk).update(status="open", assigned_to=user)
    sessions = waiting(suporte, 4)

    assignment.hand_out(departments=[suporte.pk])

    # bia (0), then caio (1, never given one: round-robin breaks the tie), bia (2 v. 2 v. 3), caio.
    assert [holder(session) for session in sessions] == ["bia", "caio", "bia", "caio"]
    assert [open_count(user) for user in (ana, bia, caio)] == [3, 2, 3]


@pytest.mark.django_db
def test_nobody_goes_over_their_limit_and_the_rest_wait_oldest_first():
    vendas = Department.objects.create(name="Vendas", assignment="least_busy")
    ana, bia = team(vendas, "ana", "bia", limit=2)
    OperatorProfile.objects.filter(user=bia).update(max_conversations=1)
    already = waiting(vendas, 1)[0]
    Session.objects.filter(pk=already.pk).update(status="open", assigned_to=ana)  # counts, in any department
    sessions = waiting(vendas, 5)

    assert len(assignment.hand_out(departments=[vendas.pk])) == 2
    assert (open_count(ana), open_count(bia)) == (2, 1)
    assert [holder(session) for session in sessions][:2] == ["bia", "ana"]
    assert all(Session.objects.get(pk=session.pk).status == "waiting" for session in sessions[2:])


@pytest.mark.django_db
def test_away_offline_inactive_and_other_departments_operators_are_never_chosen():
    vendas = Department.objects.create(name="Vendas", assignment="round_robin")
    other = Department.objects.create(name="Suporte", assignment="round_robin")
    now = timezone.now()
    team(vendas, "escolheu_ausente", chosen_presence="away", presence="away")
    team(vendas, "sem_aba", seen_at=now - timedelta(minutes=3))                 # no tab polled for 3 min
    team(vendas, "parado", active_at=now - timedelta(minutes=11))               # no input for 11 min
    team(vendas, "ainda_nao_varrido", presence="offline")                       # as others see it
    team(vendas, "sem_perfil")
    OperatorProfile.objects.filter(user__username="sem_perfil").delete()
    (inactive,) = team(vendas, "desativado")
    get_user_model().objects.filter(pk=inactive.pk).update(is_active=False)
    team(other, "de_outro")
    sessions = waiting(vendas, 3)

    assert assignment.hand_out(departments=[vendas.pk], now=now) == {}
    (ana,) = team(vendas, "ana", limit=2, now=now)
    assert assignment.hand_out(departments=[vendas.pk], now=now) == {sessions[0].pk: ana.pk, sessions[1].pk: ana.pk}


@pytest.mark.django_db
def test_off_hands_out_nothing_and_the_bot_handoff_is_unchanged(client, django_capture_on_commit_callbacks):
    vendas = Department.objects.create(name="Vendas")  # assignment off, the default
    team(vendas, "ana")
    session = waiting(vendas)[0]
    assert assignment.hand_out(departments=[vendas.pk]) == {} and assignment.sweep() == 0
    assert holder(session) is None

    replies = handoff(client, django_capture_on_commit_callbacks, "5511900000001")
    assert "fila de *Vendas* (posição 2)" in replies[-1]
    assert Session.objects.get(contact__wa_id="5511900000001").status == "waiting"


def handoff(client, capture, wa_id):
    """A customer asks for a person (the only department takes it); returns the texts queued to them."""
    body = customer_message(phone_number_id="106540352242922", wa_id=wa_id, name="Maria", wamid=f"wamid.{wa_id}",
                            text="atendente")
    assert post_signed(client, body).status_code == 200
    with capture(execute=True):
        inbound.drain()
    return list(Message.objects.filter(contact__wa_id=wa_id, direction="out").order_by("pk")
                .values_list("text", flat=True))


# --- When queues are handed out ------------------------------------------------------------


@pytest.mark.django_db
def test_a_customer_handed_off_by_the_bot_is_given_at_once(client, django_capture_on_commit_callbacks):
    vendas = Department.objects.create(name="Vendas", assignment="least_busy")
    (ana,) = team(vendas, "ana")
    replies = handoff(client, django_capture_on_commit_callbacks, "5511900000002")
    session = Session.objects.get(contact__wa_id="5511900000002")
    assert (session.status, session.assigned_to, session.department) == ("open", ana, vendas)
    assert "fila de *Vendas* (posição 1)" in replies[-1]  # told as before: first in line
    assert OperatorProfile.objects.get(user=ana).last_assigned_at == session.assigned_at


@pytest.mark.django_db
def test_a_customer_waits_when_nobody_has_room_and_goes_when_an_operator_frees_up(django_capture_on_commit_callbacks):
    vendas = Department.objects.create(name="Vendas", assignment="round_robin")
    (ana,) = team(vendas, "ana", limit=1)
    first, second, third = waiting(vendas, 3)
    assignment.hand_out(departments=[vendas.pk])
    assert [holder(session) for session in (first, second, third)] == ["ana", None, None]

    with django_capture_on_commit_callbacks(execute=True):
        conversation.close(first)
    assert [holder(session) for session in (second, third)] == ["ana", None]  # the oldest first
    with django_capture_on_commit_callbacks(execute=True):
        handling.return_to_bot(second)
    assert holder(third) == "ana"


@pytest.mark.django_db
def test_a_transfer_enters_the_new_queue_and_frees_the_operator(django_capture_on_commit_callbacks):
    vendas = Department.objects.create(name="Vendas", assignment="round_robin")
    suporte = Department.objects.create(name="Suporte", assignment="least_busy")
    (ana,) = team(vendas, "ana", limit=1)
    (bia,) = team(suporte, "bia")
    mine, queued = waiting(vendas, 2)
    assignment.hand_out(departments=[vendas.pk])
    assert (holder(mine), holder(queued)) == ("ana", None)

    with django_capture_on_commit_callbacks(execute=True):
        assert handling.transfer(mine, department=suporte)
    mine.refresh_from_db()
    assert (mine.department, mine.assigned_to, mine.status) == (suporte, bia, "open")
    assert holder(queued) == "ana"  # Ana had room again


@pytest.mark.django_db
def test_people_may_go_over_the_limit_the_next_automatic_one_waits(ana, bia, django_capture_on_commit_callbacks):
    vendas = Department.objects.create(name="Vendas", assignment="round_robin")
    team(vendas, "ana", limit=1)
    sessions = waiting(vendas, 3)
    assert handling.take(sessions[0], ana) and handling.take(sessions[1], ana)
    assert handling.transfer(sessions[2], user=ana)  # a colleague assigns it by name
    assert open_count(ana) == 3
    late = waiting(vendas)[0]
    assert assignment.sweep() == 0 and holder(late) is None
    with django_capture_on_commit_callbacks(execute=True):
        handling.take(sessions[0], bia, override=True)  # Bia takes one of Ana's: still 2 of 1
    assert holder(late) is None


@pytest.mark.django_db
def test_an_operator_coming_online_gets_the_waiting_customers(ana):
    vendas = Department.objects.create(name="Vendas", assignment="round_robin")
    vendas.operators.add(ana)
    sessions = waiting(vendas, 2)
    presence.choose(ana, "away")
    assert holder(sessions[0]) is None
    presence.choose(ana, "online")
    assert [holder(session) for session in sessions] == ["ana", "ana"]


@pytest.mark.django_db
def test_input_after_being_away_hands_out_too(client, ana):
    vendas = Department.objects.create(name="Vendas", assignment="least_busy")
    vendas.operators.add(ana)
    before = timezone.now() - timedelta(minutes=11)
    presence.record_pulse(ana, active=True, now=before)
    presence.record_pulse(ana, active=False, now=before + timedelta(minutes=10, seconds=30))
    session = waiting(vendas)[0]
    client.force_login(ana)
    client.get("/chatbot/dashboard/pulse/")  # the tab polls, no input: still away
    assert holder(session) is None
    client.get("/chatbot/dashboard/pulse/", {"active": "1"})
    assert holder(session) == "ana"


@pytest.mark.django_db
def test_a_tab_back_after_a_while_hands_out_before_any_sweep():
    vendas = Department.objects.create(name="Vendas", assignment="round_robin")
    gone = timezone.now() - timedelta(minutes=5)
    (ana,) = team(vendas, "ana", now=gone)  # still "online" as stored: the sweep has not run yet
    session = waiting(vendas)[0]
    assert assignment.sweep() == 0  # her tab is gone: not a candidate
    presence.record_pulse(ana, active=True)
    assert holder(session) == "ana"


@pytest.mark.django_db
def test_the_sweep_hands_out_what_nothing_else_did():
    vendas = Department.objects.create(name="Vendas", assignment="round_robin")
    (ana,) = team(vendas, "ana", limit=0)
    session = waiting(vendas)[0]
    assert assignment.sweep() == 0
    OperatorProfile.objects.filter(user=ana).update(max_conversations=1)  # the owner raised the limit
    assert assignment.sweep() == 1 and holder(session) == "ana"


@pytest.mark.django_db
def test_raising_a_limit_in_the_settings_hands_out_at_once(client, django_capture_on_commit_callbacks):
    vendas = Department.objects.create(name="Vendas", assignment="least_busy")
    (ana,) = team(vendas, "ana", limit=0)
    session = waiting(vendas)[0]
    client.force_login(get_user_model().objects.create_user("dono", password="x", is_staff=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/chatbot/dashboard/settings/operators/{ana.pk}/", {
            "first_name": "Ana", "email": "ana@example.com", "departments": [vendas.pk], "max_conversations": 2,
            "is_active": "on"})
    assert response.status_code == 302
    assert holder(session) == "ana"  # before any sweep


@pytest.mark.django_db
def test_the_worker_sweeps_presence_and_assignment(monkeypatch):
    from chatbot import worker

    calls = []
    for name, module in (("conversation", conversation), ("presence", presence), ("assignment", assignment)):
        monkeypatch.setattr(module, "sweep", lambda name=name: calls.append(name))
    monkeypatch.setattr(inbound, "drain", lambda: 0)
    worker.Inbox("test").step()
    assert calls == ["conversation", "presence", "assignment"]


# --- Races: any number of processes on one PostgreSQL --------------------------------------


def race_team(now):
    """Two departments sharing two of seven online operators, 3 conversations at once each (21
    places), and one operator away."""
    vendas = Department.objects.create(name="Vendas", assignment="round_robin")
    suporte = Department.objects.create(name="Suporte", assignment="least_busy")
    team(vendas, "v1", "v2", "v3", "comum1", limit=3, now=now)
    team(suporte, "s1", "s2", "comum1", "comum2", limit=3, now=now)
    team(vendas, "comum2", limit=3, now=now)
    team(vendas, "ausente", limit=3, now=now, chosen_presence="away", presence="away")
    return vendas, suporte


def assert_fair_share(given_lists, sessions, places=21):
    given = [session_id for result in given_lists for session_id in result]
    assert len(given) == len(set(given)), "a conversation was given twice"
    loads = Counter(Session.objects.filter(status="open").values_list("assigned_to__username", flat=True))
    assert max(loads.values()) <= 3 and "ausente" not in loads, loads
    # Every conversation that could be given was: all places are taken, the rest wait.
    assert sum(loads.values()) == min(places, len(sessions)) == len(given)
    assert Session.objects.filter(status="waiting").count() == len(sessions) - sum(loads.values())


@on_postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("run", range(3))
def test_many_hand_outs_at_once_never_overfill_an_operator_nor_give_a_conversation_twice(run):
    now = timezone.now()
    vendas, suporte = race_team(now)
    sessions = waiting(vendas, 25, now) + waiting(suporte, 15, now)
    calls = [{"departments": [vendas.pk]}, {"departments": [suporte.pk]}, {"operators": [
        get_user_model().objects.get(username="comum1").pk]}, {}] * 2

    # {} stands for the worker's sweep: every queue.
    results = concurrently(lambda call: assignment.hand_out(**call) if call
                           else assignment.hand_out_queues(Department.objects.all()), calls)

    assert len(results) == len(calls)
    assert_fair_share(results, sessions)


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_customers_handed_off_by_parallel_workers_are_each_given_once_within_limits():
    vendas = Department.objects.create(name="Vendas", assignment="least_busy")
    team(vendas, "ana", "bia", "caio", limit=4)
    customers = [f"55119{index:08d}" for index in range(20)]
    for wa_id in customers:
        body = customer_message(phone_number_id="106540352242922", wa_id=wa_id, name="Cliente",
                                wamid=f"wamid.{wa_id}", text="atendente")
        assert post_signed(Client(), body).status_code == 200

    # Eight workers apply the webhooks, each hand-off right after its commit.
    assert sum(concurrently(lambda _: inbound.drain(), range(8))) == 20

    loads = Counter(Session.objects.filter(status="open").values_list("assigned_to__username", flat=True))
    assert loads == {"ana": 4, "bia": 4, "caio": 4}
    assert Session.objects.filter(status="waiting").count() == 8


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_operators_coming_online_at_once_share_the_queue_within_limits():
    vendas = Department.objects.create(name="Vendas", assignment="round_robin")
    users = team(vendas, "ana", "bia", "caio", "davi", limit=3, chosen_presence="away", presence="away")
    sessions = waiting(vendas, 10)

    concurrently(lambda user: presence.choose(user, "online"), users)

    loads = Counter(Session.objects.filter(status="open").values_list("assigned_to__username", flat=True))
    assert sum(loads.values()) == 10 and max(loads.values()) <= 3, loads
    assert not Session.objects.filter(pk__in=[session.pk for session in sessions], status="waiting").exists()


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_round_robin_stays_fair_when_several_workers_hand_out_at_once():
    vendas = Department.objects.create(name="Vendas", assignment="round_robin")
    team(vendas, "ana", "bia", "caio", "davi", limit=100)
    waiting(vendas, 40)
    concurrently(lambda _: assignment.sweep(), range(4))
    loads = Counter(Session.objects.filter(status="open").values_list("assigned_to__username", flat=True))
    assert loads == {"ana": 10, "bia": 10, "caio": 10, "davi": 10}


def database_url():
    config = connection.settings_dict
    return f"postgres://{config['USER']}@{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}/{config['NAME']}"


HAND_OUT = """
import time
from chatbot import assignment
time.sleep(max(0, {start} - time.time()))
print(sorted(assignment.hand_out(departments={departments})))
"""


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_worker_processes_handing_out_at_once_keep_the_limits():
    now = timezone.now()
    vendas, suporte = race_team(now)
    sessions = waiting(vendas, 20, now) + waiting(suporte, 20, now)
    env = {**os.environ, "ENV_FILE": "", "DEBUG": "true", "DATABASE_URL": database_url()}
    start = time.time() + 4  # every process started and set up by then
    processes = [subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", HAND_OUT.format(start=start, departments=departments)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for departments in ([vendas.pk], [suporte.pk], [vendas.pk, suporte.pk], [suporte.pk, vendas.pk])]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert all(process.returncode == 0 for process in processes), [error for _out, error in outputs]
    assert_fair_share([ast.literal_eval(out.strip().splitlines()[-1]) for out, _error in outputs], sessions)

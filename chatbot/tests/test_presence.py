"""Operators' presence (chatbot/presence.py): the rule with a fixed `now`, the pulse, the chosen
presence, logging out, the worker's sweep and its online hours, and what the dashboard shows."""

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chatbot import presence
from chatbot.models import OnlineHour, OperatorProfile, Session
from chatbot.tests.helpers import make_session

pytestmark = pytest.mark.django_db

NOW = timezone.make_aware(datetime(2025, 3, 10, 14, 30))
AWAY, OFFLINE = timedelta(minutes=10), timedelta(minutes=2)


def profile(user):
    return OperatorProfile.objects.get(user=user)


def test_the_thresholds_are_settings(settings):
    assert (settings.PRESENCE_AWAY_AFTER, settings.PRESENCE_OFFLINE_AFTER) == (AWAY, OFFLINE)


@pytest.mark.parametrize("seen, active, chosen, expected", [
    (timedelta(0), timedelta(0), "online", "online"),
    (timedelta(seconds=5), AWAY, "online", "online"),                      # input 10 min ago: still online
    (timedelta(seconds=5), AWAY + timedelta(seconds=1), "online", "away"),  # then away
    (timedelta(0), timedelta(0), "away", "away"),                           # chosen
    (OFFLINE, timedelta(hours=1), "online", "away"),                        # a tab polled 2 min ago
    (OFFLINE + timedelta(seconds=1), timedelta(0), "online", "offline"),    # no tab since
    (None, None, "online", "offline"),                                      # never opened the dashboard
])
def test_the_rule(ana, seen, active, chosen, expected):
    row = OperatorProfile.objects.create(user=ana, chosen_presence=chosen, seen_at=None if seen is None else NOW - seen,
                                         active_at=None if active is None else NOW - active)
    assert row.presence_at(NOW) == expected
    # The same rule in SQL, for automatic assignment.
    assert list(OperatorProfile.objects.online(NOW)) == ([row] if expected == "online" else [])


def test_a_pulse_with_input_is_online_and_without_input_decays_to_away(ana):
    assert presence.record_pulse(ana, active=True, now=NOW).presence == "online"
    assert presence.record_pulse(ana, active=False, now=NOW + AWAY).presence == "online"
    later = presence.record_pulse(ana, active=False, now=NOW + AWAY + timedelta(seconds=2))
    assert later.presence == "away" and later.active_at == NOW and later.seen_at == NOW + AWAY + timedelta(seconds=2)
    assert presence.record_pulse(ana, active=True, now=NOW + timedelta(minutes=11)).presence == "online"  # back


def test_a_chosen_away_stays_away_whatever_the_input(ana):
    assert presence.choose(ana, "away", now=NOW).presence == "away"
    assert presence.record_pulse(ana, active=True, now=NOW + timedelta(seconds=2)).presence == "away"
    assert presence.choose(ana, "online", now=NOW + timedelta(seconds=4)).presence == "online"
    with pytest.raises(ValueError):
        presence.choose(ana, "offline", now=NOW)


def test_the_sweep_decays_to_away_then_offline_and_records_online_hours(ana, bia):
    presence.record_pulse(ana, active=True, now=NOW)
    presence.record_pulse(bia, active=True, now=NOW)
    assert presence.sweep(NOW) == (0, 2)
    # Ana's tab keeps polling without input; Bia's tab is gone.
    presence.record_pulse(ana, active=False, now=NOW + timedelta(minutes=1, seconds=30))
    assert presence.sweep(NOW + timedelta(minutes=2, seconds=30)) == (1, 1)
    assert (profile(ana).presence, profile(bia).presence) == ("online", "offline")
    presence.record_pulse(ana, active=False, now=NOW + timedelta(minutes=9, seconds=30))
    assert presence.sweep(NOW + timedelta(minutes=10, seconds=31)) == (1, 0)  # no input for 10 min
    assert profile(ana).presence == "away"
    # One row per operator and hour, however many samples: 14:00 for both; nobody online at 14:40.
    hour = NOW.replace(minute=0)
    assert sorted(OnlineHour.objects.values_list("user__username", "hour")) == [("ana", hour), ("bia", hour)]
    presence.record_pulse(ana, active=True, now=NOW + timedelta(minutes=31))
    presence.sweep(NOW + timedelta(minutes=31))
    presence.sweep(NOW + timedelta(minutes=32))
    assert OnlineHour.objects.filter(user=ana).count() == 2  # 14:00 and 15:00
    assert str(OnlineHour.objects.filter(user=ana).latest("hour")) == "ana 2025-03-10 15:00"


def test_the_pulse_reports_input_and_answers_the_presence(client, ana):
    client.force_login(ana)
    body = client.get(reverse("chatbot:dashboard-pulse"), {"active": "1"}).json()
    assert (body["presence"], body["presence_label"]) == ("online", str(OperatorProfile.Presence.ONLINE.label))
    first = profile(ana).active_at
    client.get(reverse("chatbot:dashboard-pulse"))
    assert profile(ana).active_at == first and profile(ana).seen_at > first


def test_the_top_bar_control_chooses_away_and_back(client, ana):
    client.force_login(ana)
    page = reverse("chatbot:dashboard-conversations")
    response = client.post(reverse("chatbot:dashboard-presence"), {"presence": "away", "next": page})
    assert response.status_code == 302 and response.url == page
    assert (profile(ana).chosen_presence, profile(ana).presence) == ("away", "away")
    html = client.get(page).content.decode()
    assert 'id="my-presence" data-presence="away"' in html
    assert 'value="away" aria-pressed="true"' in html
    client.post(reverse("chatbot:dashboard-presence"), {"presence": "online"})
    assert profile(ana).presence == "online"
    # Nothing else is a presence one chooses; a GET changes nothing; CSRF is checked.
    client.post(reverse("chatbot:dashboard-presence"), {"presence": "offline"})
    assert profile(ana).chosen_presence == "online"
    assert client.get(reverse("chatbot:dashboard-presence")).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(ana)
    assert strict.post(reverse("chatbot:dashboard-presence"), {"presence": "away"}).status_code == 403


def test_logging_out_is_offline_at_once(client, ana):
    client.force_login(ana)
    client.get(reverse("chatbot:dashboard-pulse"), {"active": "1"})
    assert profile(ana).presence == "online"
    client.post(reverse("logout"))
    assert (profile(ana).presence, profile(ana).seen_at) == ("offline", None)
    assert not OperatorProfile.objects.online(timezone.now()).exists()


def test_colleagues_see_each_others_presence(client, ana, bia, owner):
    presence.choose(bia, "away")
    session = make_session(status=Session.Status.WAITING)
    client.force_login(ana)
    html = client.get(reverse("chatbot:dashboard-conversation", args=[session.pk])).content.decode()
    away, offline = OperatorProfile.Presence.AWAY.label, OperatorProfile.Presence.OFFLINE.label
    assert f'data-presence="away">◐ bia ({away})</option>' in html  # the assign menu
    assert f'data-presence="offline">○ dono ({offline})</option>' in html
    assert html.count('data-presence="away">◐ bia') == 2  # and the bulk assign menu
    client.force_login(owner)
    html = client.get(reverse("chatbot:dashboard-settings-operators")).content.decode()
    assert f"◐ {away}" in html and f"○ {offline}" in html


def test_the_overview_shows_the_team_now_online_first_with_their_load(client, ana, bia, owner):
    presence.record_pulse(bia, active=True)
    OperatorProfile.objects.filter(user=bia).update(max_conversations=3)
    Session.objects.filter(pk=make_session(status=Session.Status.OPEN).pk).update(assigned_to=bia)
    # Ana's stored presence still says online, but her tab went quiet 3 minutes ago: the card goes
    # by the rule, not by what the worker's next sweep will store.
    OperatorProfile.objects.create(user=ana, presence="online", seen_at=timezone.now() - timedelta(minutes=3),
                                   active_at=timezone.now() - timedelta(minutes=3))
    client.force_login(owner)
    html = client.get(reverse("chatbot:dashboard"), {"partial": "1"}).content.decode()
    team = html[html.index('id="team"'):]
    rows = [team.index(f"<th scope=\"row\">{name}</th>") for name in ("Bia", "Ana")]
    assert rows == sorted(rows)  # online first
    online, offline = str(OperatorProfile.Presence.ONLINE.label), str(OperatorProfile.Presence.OFFLINE.label)
    assert '<tr data-presence="online"><th scope="row">Bia</th>' in team and online in team
    assert '<tr data-presence="offline"><th scope="row">Ana</th>' in team and offline in team
    assert "1 de 3" in team

"""The login's limits (chatbot/logins.py): keyed by the identity Django authenticates, counting
failures only, and never letting a stranger lock an operator out of a browser they use."""

import pytest
from django.test import Client
from django.urls import reverse

from chatbot.dashboard import logins
from chatbot.models import RateLimit

pytestmark = pytest.mark.django_db

PASSWORD = "senha-certa-123"
# What Django's login form turns into "opb" before authenticating: stripped, NFKC-normalised.
VARIANTS = [" opb", "opb\n", "\u3000opb", "ｏｐｂ", "OPB"]


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def opb(django_user_model):
    return django_user_model.objects.create_user("opb", password=PASSWORD)


def log_out(client):
    """Log out as a browser does: the test client's logout() would also drop every cookie."""
    assert client.post(reverse("logout")).status_code == 302


def attempt(client, username, password="errada", address="203.0.113.9"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_spellings_of_one_name_share_one_limit(client, opb):
    for index in range(5):
        assert attempt(client, ["opb", *VARIANTS][index]).status_code == 200
    for variant in VARIANTS:
        assert attempt(client, variant).status_code == 429
        # Not even the right password gets a check: the limit is spent for opb, however written.
        assert attempt(client, variant, PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session


def test_successful_logins_do_not_count(opb):
    # A small office sharing one account behind one address.
    for _ in range(12):
        office = Client()
        response = attempt(office, "opb", PASSWORD)
        assert response.status_code == 302, response.status_code
        assert office.session["_auth_user_id"] == str(opb.pk)


def test_a_success_gives_its_attempt_back_after_typos(opb):
    office = Client()
    for _ in range(4):
        assert attempt(office, "opb").status_code == 200
    assert attempt(office, "opb", PASSWORD).status_code == 302
    log_out(office)
    assert attempt(office, "opb").status_code == 200  # the 5th failure is still allowed


def test_a_stranger_cannot_lock_an_operator_out_of_their_browser(opb):
    browser = Client()
    assert attempt(browser, "opb", PASSWORD, address="198.51.100.7").status_code == 302
    assert logins.DEVICE_COOKIE in browser.cookies
    log_out(browser)
    # Guessing from many addresses spends opb's count for every browser opb never used...
    attacker = Client()
    statuses = [attempt(attacker, "opb", address=f"192.0.2.{index}").status_code for index in range(40)]
    assert statuses.count(429) >= 15
    assert attempt(Client(), "opb", PASSWORD, address="198.51.100.8").status_code == 429
    # ...but the operator's own browser logs in.
    assert attempt(browser, "opb", PASSWORD, address="198.51.100.7").status_code == 302


def test_a_device_cookie_for_another_user_or_forged_counts_for_nothing(opb, django_user_model):
    django_user_model.objects.create_user("outra", password=PASSWORD)
    browser = Client()
    assert attempt(browser, "outra", PASSWORD).status_code == 302
    log_out(browser)
    # outra's cookie: opb's attempts from this browser count as from anywhere.
    for _ in range(5):
        assert attempt(browser, "opb").status_code == 200
    assert attempt(browser, "opb").status_code == 429
    browser.cookies[logins.DEVICE_COOKIE] = "b3Bi:forged"
    assert attempt(browser, "opb", address="203.0.113.10").status_code == 200
    assert attempt(browser, "opb", PASSWORD, address="203.0.113.9").status_code == 429


def test_guessing_stays_slow_from_one_address(opb):
    statuses = [attempt(Client(), "opb").status_code for _ in range(10)]
    assert statuses == [200] * 5 + [429] * 5


@pytest.mark.parametrize(("username", "address"), [
    ("o" * 120, "203.0.113.9"),
    ("o" * 60, "2001:db8:85a3:8d3:1319:8a2e:370:7348"),
    ("ü" * 5000, "2001:db8::1"),
])
def test_long_names_and_ipv6_addresses_are_answered_not_500(client, username, address):
    response = attempt(Client(raise_request_exception=False), username, address=address)
    assert response.status_code == 200
    assert all(len(key) == 64 for key in RateLimit.objects.values_list("key", flat=True))

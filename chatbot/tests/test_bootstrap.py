from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from chatbot.models import Department, PhoneNumber

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("bootstrap", *args, stdout=out)
    return out.getvalue()


def test_fresh_install_gets_a_login_that_works():
    output = run("--url", "http://127.0.0.1:8000/")
    last = output.strip().splitlines()[-1]
    assert "admin" in last
    password = last.split()[-1]
    user = authenticate(username="admin", password=password)
    assert user is not None and user.is_superuser
    assert "http://127.0.0.1:8000/admin/" in output
    assert PhoneNumber.objects.count() == 1
    assert list(Department.objects.values_list("name", flat=True)) == ["Vendas", "Suporte", "Financeiro"]
    assert Group.objects.filter(name="Operadores").exists()


def test_running_again_changes_nothing_and_shows_no_password():
    run()
    output = run()
    assert get_user_model().objects.count() == 1
    assert Department.objects.count() == 3
    assert "changepassword" in output

"""Contacts imported from a CSV file (chatbot/imports.py and `whatsapp_chatbot import-contacts`):
numbers in every Brazilian form, the files Excel and people write, what an import changes and
what it never does, and the command's report."""

from datetime import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from chatbot import imports
from chatbot.models import Contact, ContactAttribute, Label

pytestmark = pytest.mark.django_db

FILE = """Nome;Telefone;Cidade;Etiquetas;opt_in;opt_in_em
João Silva;(11) 98765-4321;São Paulo;VIP|Clientes 2024;site;31/03/2026 14:30
Maria;+55 21 8765-4321;Rio de Janeiro;;sim;
Sem número;;Recife;;;
Repetido;11987654321;;;;
"""


def run(data, **kwargs):
    return imports.import_contacts(data.encode() if isinstance(data, str) else data, **kwargs)


@pytest.mark.parametrize(("written", "wa_id"), [
    ("+55 11 98765-4321", "5511987654321"),
    ("(11) 98765-4321", "5511987654321"),
    ("11987654321", "5511987654321"),
    ("5511987654321", "5511987654321"),
    ("011 98765-4321", "5511987654321"),
    ("0 15 11 98765-4321", "5511987654321"),  # a long-distance carrier code
    ("0055 11 98765 4321", "5511987654321"),
    ("11 8765-4321", "5511987654321"),  # a mobile without its ninth digit
    ("+55 (11) 3456-7890", "551134567890"),  # a landline stays as it is
    ("+1 415 555 2671", "14155552671"),  # another country, as written
    ("+351 912 345 678", "351912345678"),
])
def test_every_way_people_write_a_number(written, wa_id):
    assert imports.phone(written) == wa_id


@pytest.mark.parametrize(("written", "reason"), [
    ("", "sem número de telefone"),
    ("12345", "não é um número brasileiro"),
    ("(20) 98765-4321", "não tem um DDD brasileiro"),
    ("11 88765-43210", "não é um número brasileiro"),
    ("11 8876-543210", "não é um número brasileiro"),
    ("(11) 88765-4321", "tem um dígito a mais"),
    ("+1 23", "curto ou longo demais"),
])
def test_what_is_no_number_says_why(written, reason):
    with pytest.raises(imports.BadNumber, match=reason):
        imports.phone(written)


def test_a_file_is_imported_with_names_attributes_labels_and_opt_in():
    report = run(FILE, label="Feira")
    assert (report.imported, report.updated, report.unchanged) == (2, 0, 0)
    assert report.refused == [(4, "sem número de telefone"), (5, "o mesmo número da linha 2")]
    joao = Contact.objects.get(wa_id="5511987654321")
    assert (joao.name, joao.attributes, joao.opt_in_source) == ("João Silva", {"cidade": "São Paulo"}, "site")
    assert timezone.localtime(joao.opted_in_at).replace(tzinfo=None) == datetime(2026, 3, 31, 14, 30)
    assert sorted(joao.labels.values_list("name", flat=True)) == ["Clientes 2024", "Feira", "VIP"]
    maria = Contact.objects.get(wa_id="5521987654321")
    assert maria.opt_in_source == "“sim” em uma importação" and maria.opted_in_at is not None
    assert list(maria.labels.values_list("name", flat=True)) == ["Feira"]
    assert ContactAttribute.objects.get(key="cidade").name == "Cidade"


def test_importing_the_same_file_again_changes_nothing():
    run(FILE, label="Feira")
    before = list(Contact.objects.order_by("pk").values())
    report = run(FILE, label="Feira")
    assert (report.imported, report.updated, report.unchanged) == (0, 0, 2)
    assert list(Contact.objects.order_by("pk").values()) == before
    assert Label.objects.count() == 3 and Contact.labels.through.objects.count() == 4


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_the_files_excel_and_people_write(encoding, delimiter):
    text = FILE.replace(";", delimiter).replace("VIP|Clientes 2024", "VIP")
    report = run(text.replace("\n", "\r\n").encode(encoding))
    assert (report.imported, len(report.refused)) == (2, 2)
    assert Contact.objects.get(wa_id="5511987654321").attributes == {"cidade": "São Paulo"}


def test_headers_in_english_or_other_words_and_quoted_values():
    report = run('phone,name,plan\n"+55 11 98765-4321","Silva, João","Ouro, anual"\n')
    assert report.imported == 1
    contact = Contact.objects.get()
    assert (contact.name, contact.attributes) == ("Silva, João", {"plan": "Ouro, anual"})


def test_an_existing_contact_is_found_under_either_form_of_its_number_and_kept():
    Contact.objects.create(wa_id="551187654321", name="João (WhatsApp)", opted_out=True,
                           attributes={"cidade": "Santos", "cpf": "123"})
    report = run("telefone,nome,cidade,opt_in\n11 98765-4321,João Silva,,site\n")
    assert (report.imported, report.updated, report.still_opted_out) == (0, 1, 1)
    contact = Contact.objects.get()  # not a second contact
    assert (contact.wa_id, contact.name, contact.opted_out) == ("551187654321", "João (WhatsApp)", True)
    assert contact.attributes == {"cidade": "Santos", "cpf": "123"}  # an empty cell erases nothing
    assert contact.opt_in_source == "site"


def test_the_first_opt_in_is_kept_and_a_new_label_is_an_update():
    run("telefone,opt_in,opt_in_em\n11987654321,site,01/02/2026\n")
    report = run("telefone,opt_in,opt_in_em,etiquetas\n11987654321,balcão,05/05/2026,VIP\n")
    contact = Contact.objects.get()
    assert (contact.opt_in_source, timezone.localtime(contact.opted_in_at).day) == ("site", 1)
    assert (report.updated, report.unchanged) == (1, 0)
    assert list(contact.labels.values_list("name", flat=True)) == ["VIP"]


def test_a_broken_line_is_refused_and_the_rest_imported():
    report = run("telefone;nome\n11987654321;Ana\n11987654322;Bia;extra;campos\n11987654323;Caio\n")
    assert report.imported == 2
    assert report.refused == [(3, "mais campos do que o cabeçalho (um ; dentro de um valor sem aspas?)")]


@pytest.mark.parametrize(("data", "message"), [
    (b"", "O arquivo está vazio"),
    (b"\n\n", "O arquivo está vazio"),
    (b"nome,cidade\nAna,Recife\n", "Nenhuma coluna de telefone"),
])
def test_a_file_that_cannot_be_imported_says_why_and_writes_nothing(data, message):
    with pytest.raises(imports.ImportRefused, match=message):
        run(data)
    assert not Contact.objects.exists()


# --- The command -----------------------------------------------------------------------------


def command(*args):
    out = StringIO()
    call_command("whatsapp_chatbot", "import-contacts", *args, stdout=out)
    return out.getvalue()


def test_the_command_reports_in_portuguese(tmp_path, settings):
    path = tmp_path / "clientes.csv"
    path.write_bytes(FILE.encode("cp1252"))
    out = command(str(path), "--label", "Feira")
    assert "Novos: 2 · atualizados: 0 · sem mudança: 0 · linhas recusadas: 2" in out
    assert "linha 4: sem número de telefone" in out and "linha 5: o mesmo número da linha 2" in out
    assert "Novos: 0 · atualizados: 0 · sem mudança: 2" in command(str(path), "--label", "Feira")


def test_the_command_fails_with_one_sentence(tmp_path):
    with pytest.raises(CommandError, match="Não foi possível ler"):
        command(str(tmp_path / "nao-existe.csv"))
    (tmp_path / "x.csv").write_text("nome\nAna\n")
    with pytest.raises(CommandError, match="Nenhuma coluna de telefone"):
        command(str(tmp_path / "x.csv"))
    (tmp_path / "y.csv").write_text("telefone\n123\n")
    with pytest.raises(CommandError, match="Nenhuma linha pôde ser importada"):
        command(str(tmp_path / "y.csv"))


def test_a_contact_a_webhook_created_meanwhile_is_left_alone_and_labelled(monkeypatch):
    # The webhook's contact appears after the import looked for it: the insert skips it.
    Contact.objects.create(wa_id="5511987654321", name="Do WhatsApp")
    monkeypatch.setattr(imports.contacts, "variants", lambda number: ["no-such-number"])
    run("telefone,nome\n11987654321,Da planilha\n", label="Feira")
    contact = Contact.objects.get()
    assert contact.name == "Do WhatsApp"
    assert list(contact.labels.values_list("name", flat=True)) == ["Feira"]

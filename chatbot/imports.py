"""Contacts imported from a spreadsheet (design.md: `whatsapp_chatbot import-contacts FILE.csv
[--label L]`), the audiences of campaigns.

A file as people make them: separated by commas or semicolons (Excel in Brazil writes ";"), in
UTF-8 with or without a BOM, or in Windows-1252 as Excel saves "CSV"; a header row naming a phone
column (`telefone`, `phone`, `wa_id`, `celular`, `whatsapp`…), optionally a name (`nome`,
`name`), labels (`etiquetas`: several split by "|", "," or ";"), the opt-in's source and time
(`opt_in`, `opt_in_em`), and any other column, kept as the contact's attribute of that name.

Numbers are read in every Brazilian form (+55 11 98765-4321, (11) 98765-4321, 011 98765-4321,
11987654321, with or without the ninth digit) and kept with 55 and the ninth digit; a number
written with + and another country code is kept as written. An existing contact is found under
either form of its number.

What an import never does: erase (an empty cell changes nothing), rename a contact who already has
a name, undo an opt-out, or move a first opt-in's time. So importing the same file again changes
nothing. Every refused line is reported with its number and why; nothing is written unless the
whole file is read (one transaction).
"""

import csv
import functools
import io
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import JSONField
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from . import contacts
from .models import Contact, ContactAttribute, Label
from .search import fold

COLUMNS = {
    "phone": {"telefone", "phone", "wa id", "wa_id", "celular", "whatsapp", "numero", "fone", "telefone celular",
              "mobile", "phone number", "numero de telefone"},
    "name": {"nome", "name", "nome completo", "full name", "cliente"},
    "labels": {"etiquetas", "etiqueta", "labels", "label", "tags"},
    "opt_in": {"opt in", "optin", "opt in origem", "origem do opt in", "opt in source", "consentimento"},
    "opt_in_at": {"opt in em", "opt in at", "data do opt in", "opt in data", "consentimento em"},
}
NO = {"", "nao", "não", "no", "n", "0", "false", "falso"}
YES = {"sim", "s", "yes", "y", "1", "true", "verdadeiro", "x"}
# Brazil's area codes (DDD).
AREA_CODES = {11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, 41, 42, 43, 44,
              45, 46, 47, 48, 49, 51, 53, 54, 55, 61, 62, 63, 64, 65, 66, 67, 68, 69, 71, 73, 74, 75, 77, 79, 81,
              82, 83, 84, 85, 86, 87, 88, 89, 91, 92, 93, 94, 95, 96, 97, 98, 99}
BATCH = 2000
REFUSED_SHOWN = 20


class ImportRefused(ValueError):
    """A file that cannot be imported at all (the message says why)."""


class BadNumber(ValueError):
    """A line's number that is no phone number (the message says why)."""


@dataclass
class Report:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list = field(default_factory=list)  # (line number, reason)
    still_opted_out: int = 0


@dataclass
class Row:
    line: int
    wa_id: str
    name: str = ""
    labels: tuple = ()
    opt_in: str = ""
    opt_in_at: datetime | None = None
    attributes: dict = field(default_factory=dict)


# --- Reading (pure) ----------------------------------------------------------------------------


def decode(data):
    """The file's text: UTF-8 (a BOM dropped), else Windows-1252 as Excel saves a CSV in Brazil."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def header_key(name):
    return " ".join(re.sub(r"[^a-z0-9]+", " ", fold(name)).split())


def phone(text):
    """The wa_id of a number as people write it; BadNumber says why not."""
    raw = (text or "").strip()
    digits = re.sub(r"\D", "", raw)
    if not digits:
        raise BadNumber(_("no phone number"))
    if raw.startswith("+") or raw.startswith("00"):
        digits = digits.removeprefix("00") if raw.startswith("00") else digits
        if not digits.startswith("55"):
            if 8 <= len(digits) <= 15:
                return digits  # another country's number, as written
            raise BadNumber(_("%(number)s is too short or too long for a phone number") % {"number": raw})
    elif digits.startswith("0"):
        digits = digits.lstrip("0")
        if len(digits) in (12, 13):  # a long-distance carrier code (0 15 11 …): dropped
            digits = digits[2:]
    if len(digits) in (10, 11):
        digits = "55" + digits
    if not digits.startswith("55") or len(digits) not in (12, 13):
        raise BadNumber(_("%(number)s is not a Brazilian number with its area code") % {"number": raw})
    area, local = int(digits[2:4]), digits[4:]
    if area not in AREA_CODES:
        raise BadNumber(_("%(number)s has no Brazilian area code") % {"number": raw})
    if len(local) == 9 and local[0] != "9":
        raise BadNumber(_("%(number)s has one digit too many") % {"number": raw})
    if len(local) == 8 and local[0] in "6789":
        return digits[:4] + "9" + local  # a mobile number written without its ninth digit
    return digits


BRAZILIAN_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?")


@functools.lru_cache(maxsize=4096)  # a file repeats its dates
def moment(text):
    """An opt-in's time as written (31/03/2026, 31/03/2026 14:30, 2026-03-31 14:30…) in TIME_ZONE,
    or None."""
    text = (text or "").strip()
    if match := BRAZILIAN_DATE.fullmatch(text):
        day, month, year, *clock = match.groups()
    elif match := ISO_DATE.fullmatch(text):
        year, month, day, *clock = match.groups()
    else:
        return None
    try:
        return timezone.make_aware(datetime(int(year) + (2000 if len(year) == 2 else 0), int(month), int(day),
                                            *(int(part or 0) for part in clock)))
    except ValueError:  # 31/02
        return None


def source(opt_in):
    """The opt-in column's value as its source: none for a no, a plain yes said as such."""
    if fold(opt_in) in NO:
        return ""
    return pgettext("opt-in source", "a yes in an import") if fold(opt_in) in YES else opt_in[:255]


def read(data):
    """(rows, refused) of a CSV file's bytes; ImportRefused when it has no header with a phone
    column. A number seen on an earlier line is refused on the later one."""
    text = decode(data)
    first = text.split("\n", 1)[0]
    delimiter = max([";", ",", "\t"], key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise ImportRefused(_("The file is empty: a header row with a phone column is expected."))
    roles, attributes = {}, {}
    for index, name in enumerate(header):
        key = header_key(name)
        role = next((role for role, names in COLUMNS.items() if key in names), None)
        if role and role not in roles:
            roles[role] = index
        elif key:
            attributes[index] = slugify(key).replace("-", "_")[:40]
    if "phone" not in roles:
        raise ImportRefused(_("No phone column: name one telefone, phone, wa_id or celular (the columns are: "
                              "%(columns)s).") % {"columns": ", ".join(header)})
    rows, refused, seen = [], [], {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header):]):
            refused.append((line, _("more fields than the header has (a %(delimiter)s inside an unquoted value?)")
                            % {"delimiter": delimiter}))
            continue

        def cell(index, cells=cells):
            return cells[index].strip() if index is not None and index < len(cells) else ""

        try:
            wa_id = phone(cell(roles["phone"]))
        except BadNumber as bad:
            refused.append((line, str(bad)))
            continue
        if wa_id in seen:
            refused.append((line, _("the same number as line %(line)d") % {"line": seen[wa_id]}))
            continue
        seen[wa_id] = line
        rows.append(Row(
            line=line, wa_id=wa_id, name=cell(roles.get("name"))[:255],
            labels=tuple(name.strip()[:40] for name in re.split(r"[|,;]", cell(roles.get("labels"))) if name.strip()),
            opt_in=source(cell(roles.get("opt_in"))),
            opt_in_at=moment(cell(roles.get("opt_in_at"))),
            attributes={key: cell(index) for index, key in attributes.items() if key and cell(index)}))
    return rows, refused


# --- Writing -----------------------------------------------------------------------------------


def import_contacts(data, *, label="", progress=None, now=None):
    """Import a CSV file's bytes; returns the Report. `label`: a label put on every contact of the
    file (created if new). `progress(iterable, total, label)` may wrap the batches."""
    now = now or timezone.now()
    rows, refused = read(data)
    report = Report(refused=refused)
    progress = progress or (lambda iterable, total, name: iterable)
    with transaction.atomic():
        names = {name for row in rows for name in row.labels} | ({label} if label else set())
        labels = {item.name: item for item in Label.objects.filter(name__in=names)}
        for name in sorted(names - set(labels)):
            labels[name] = Label.objects.create(name=name)
        keys = {key for row in rows for key in row.attributes}
        known = set(ContactAttribute.objects.filter(key__in=keys).values_list("key", flat=True))
        ContactAttribute.objects.bulk_create([ContactAttribute(key=key, name=key.replace("_", " ").capitalize())
                                              for key in sorted(keys - known)], ignore_conflicts=True)
        batches = [rows[start:start + BATCH] for start in range(0, len(rows), BATCH)]
        for batch in progress(batches, len(batches), _("Importing")):
            write(batch, labels, label, report, now)
    return report


UPDATED = ["name", "attributes", "opted_in_at", "opt_in_source"]


def update(changed):
    """Save the UPDATED fields of `changed` contacts. Django's bulk_update writes a CASE with a
    branch per row, which PostgreSQL evaluates for every row (18,000 contacts: 14 s); there, one
    UPDATE … FROM (VALUES …) per batch does it in a fraction of that."""
    if connection.vendor != "postgresql":
        Contact.objects.bulk_update(changed, UPDATED, batch_size=200)
        return
    from psycopg2.extras import Json, execute_values

    with connection.cursor() as cursor:
        execute_values(
            cursor.cursor,
            "UPDATE chatbot_contact AS c SET name = v.name, attributes = v.attributes, opted_in_at = v.opted_in_at, "
            "opt_in_source = v.opt_in_source FROM (VALUES %s) AS v(id, name, attributes, opted_in_at, opt_in_source) "
            "WHERE c.id = v.id",
            [(contact.pk, contact.name, Json(contact.attributes), contact.opted_in_at, contact.opt_in_source)
             for contact in changed],
            template="(%s, %s, %s::jsonb, %s::timestamptz, %s)", page_size=BATCH)


def insert(model, objects):
    """Insert `objects` (new `model` instances), skipping those a unique constraint already has (a
    contact a webhook created meanwhile, a label link already there). Django's bulk_create
    prepares each field of each row in Python (82,000 contacts: 7 s); on PostgreSQL the values go
    as they are, which is all these plain fields need."""
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects, batch_size=BATCH, ignore_conflicts=True)
        return
    from psycopg2 import sql
    from psycopg2.extras import Json, execute_values

    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    as_json = {field.attname for field in fields if isinstance(field, JSONField)}
    statement = sql.SQL("INSERT INTO {} ({}) VALUES %s ON CONFLICT DO NOTHING").format(
        sql.Identifier(model._meta.db_table), sql.SQL(", ").join(sql.Identifier(field.column) for field in fields))
    rows = [tuple(Json(getattr(item, name)) if name in as_json else getattr(item, name)
                  for name in (field.attname for field in fields)) for item in objects]
    with connection.cursor() as cursor:
        execute_values(cursor.cursor, statement.as_string(cursor.cursor), rows, page_size=BATCH)


def write(batch, labels, label, report, now):
    forms = {form: row for row in batch for form in contacts.variants(row.wa_id)}
    existing = {}
    # `wa_id <> ''` as the unique index says, so that PostgreSQL uses it for a long list.
    for contact in Contact.objects.filter(wa_id__in=list(forms)).exclude(wa_id="").only(
            "wa_id", "opted_out", *UPDATED):
        existing.setdefault(forms[contact.wa_id].wa_id, contact)
    new, changed = [], []
    for row in batch:
        contact = existing.get(row.wa_id)
        if contact is None:
            contact = Contact(wa_id=row.wa_id, name=row.name, attributes=row.attributes, first_seen_at=now,
                              last_seen_at=now, opt_in_source=row.opt_in,
                              opted_in_at=(row.opt_in_at or now) if row.opt_in else None)
            new.append(contact)
            continue
        before = (contact.name, dict(contact.attributes), contact.opted_in_at, contact.opt_in_source)
        contact.name = contact.name or row.name
        contact.attributes = {**contact.attributes, **row.attributes}
        if row.opt_in and contact.opted_in_at is None:  # the first opt-in is kept
            contact.opted_in_at, contact.opt_in_source = row.opt_in_at or now, row.opt_in
        if row.opt_in and contact.opted_out:
            report.still_opted_out += 1
        if (contact.name, contact.attributes, contact.opted_in_at, contact.opt_in_source) != before:
            changed.append(contact)
    insert(Contact, new)  # a contact a webhook created meanwhile is left alone, and found below
    update(changed)
    report.imported += len(new)
    report.updated += len(changed)
    report.unchanged += len(batch) - len(new) - len(changed)
    wanted = {row.wa_id: {labels[name].pk for name in (*row.labels, *([label] if label else []))} for row in batch}
    if not any(wanted.values()):
        return
    through = Contact.labels.through
    ids = dict(Contact.objects.filter(wa_id__in=[wa_id for wa_id, items in wanted.items() if items])
               .exclude(wa_id="").values_list("wa_id", "pk"))
    ids.update({wa_id: contact.pk for wa_id, contact in existing.items()})
    had = set(through.objects.filter(contact_id__in=[contact.pk for contact in existing.values()])
              .values_list("contact_id", "label_id"))
    added = {(ids[wa_id], pk) for wa_id, items in wanted.items() if wa_id in ids for pk in items} - had
    insert(through, [through(contact_id=contact, label_id=pk) for contact, pk in sorted(added)])
    # An existing contact that only gained a label was updated too.
    relabelled = {contact for contact, _pk in added} & {contact.pk for contact in existing.values()}
    relabelled -= {contact.pk for contact in changed}
    report.updated += len(relabelled)
    report.unchanged -= len(relabelled)

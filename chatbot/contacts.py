"""Contacts (customers): how Meta names them and how we find them.

Meta identifies a user by phone number (`wa_id`) and, since 2026, by a business-scoped user ID
(BSUID, `user_id`); either may be missing, never both (cloud-api.md §4). A Brazilian mobile number
is written with or without its ninth digit: Meta knows each user under one form, integrators type
either, so a number is looked up in both.
"""

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest

from . import events
from .models import Contact, Message, fit

WA_ID_MAX = Contact._meta.get_field("wa_id").max_length


def upsert(*, wa_id, user_id, profile, moment, inbound):
    """Find or create the contact Meta identifies by phone (`wa_id`) and/or BSUID (`user_id`).

    The returned row's attributes are as _updated; `created` says whether this call created it and
    `previous_inbound_at` is its last inbound time before this call (what the spam guard needs).
    """
    name = profile.name if profile else ""
    username = profile.username if profile else ""
    wa_id = wa_id or (profile.wa_id if profile else "")
    user_id = user_id or (profile.user_id if profile else "")
    new = fit(Contact, {
        "wa_id": wa_id, "user_id": user_id, "name": name, "username": username, "first_seen_at": moment,
        "last_seen_at": moment, "last_inbound_at": moment if inbound else None,
    })
    wa_id, user_id, name, username = new["wa_id"], new["user_id"], new["name"], new["username"]
    if not wa_id and not user_id:
        # Meta always names the user one way or the other; if not, keep the message on its own contact.
        return _created(new)
    lookup = Q(wa_id=wa_id) if wa_id else Q(user_id=user_id)
    if wa_id and user_id:
        lookup |= Q(user_id=user_id)
    contact = Contact.objects.filter(lookup).order_by("-wa_id").first()
    if contact is None:
        try:
            with transaction.atomic():
                return _created(new)
        except IntegrityError:
            # Another delivery created it a moment ago on another connection.
            contact = Contact.objects.filter(lookup).order_by("-wa_id").first()
    contact.created, contact.previous_inbound_at = False, contact.last_inbound_at
    changes = {
        attribute: value
        for attribute, value in (("name", name), ("username", username), ("wa_id", wa_id), ("user_id", user_id))
        if value and getattr(contact, attribute) != value and not contact.anonymized_at
    }
    # Greatest() keeps these times monotonic when deliveries arrive out of order or race.
    if contact.last_seen_at < moment:
        changes["last_seen_at"] = Greatest(F("last_seen_at"), Value(moment))
    if inbound and (contact.last_inbound_at is None or contact.last_inbound_at < moment):
        changes["last_inbound_at"] = Greatest(Coalesce(F("last_inbound_at"), Value(moment)), Value(moment))
    if "wa_id" in changes or "user_id" in changes:
        try:
            with transaction.atomic():
                Contact.objects.filter(pk=contact.pk).update(**changes)
            return _updated(contact, changes, moment)
        except IntegrityError:
            # The ID belongs to another contact row (e.g. a BSUID first seen alone); keep both rows.
            changes.pop("wa_id", None)
            changes.pop("user_id", None)
    if changes:
        Contact.objects.filter(pk=contact.pk).update(**changes)
    return _updated(contact, changes, moment)


def _created(fields):
    contact = Contact.objects.create(**fields)
    contact.created, contact.previous_inbound_at = True, None
    return contact


def _updated(contact, changes, moment):
    """`contact` with the values just written (the monotonic times as this transaction wrote them)."""
    for attribute in changes:
        setattr(contact, attribute, moment if attribute.startswith("last_") else changes[attribute])
    return contact


def change_number(contact, new_wa_id):
    if not (isinstance(new_wa_id, str) and new_wa_id.isdigit() and len(new_wa_id) <= WA_ID_MAX):
        return  # not a phone number: keep the one we have
    if not Contact.objects.filter(wa_id=new_wa_id).exists():
        Contact.objects.filter(pk=contact.pk).update(wa_id=new_wa_id)


def variants(number):
    """A Brazilian mobile number with and without its ninth digit (55 + area code + 9 + 8 digits):
    Meta knows each user under one of them, integrators write either."""
    if number.startswith("55") and len(number) == 13 and number[4] == "9":
        return [number, number[:4] + number[5:]]
    if number.startswith("55") and len(number) == 12 and number[4] in "6789":
        return [number, number[:4] + "9" + number[4:]]
    return [number]


def for_recipient(to):
    """The contact `to` names (phone number in either Brazilian form, or BSUID), created if new."""
    if not to.isdigit():
        contact, _new = Contact.objects.get_or_create(user_id=to)
        return contact
    forms = variants(to)
    found = {contact.wa_id: contact for contact in Contact.objects.filter(wa_id__in=forms)}
    for variant in forms:
        if variant in found:
            return found[variant]
    try:
        with transaction.atomic():
            return Contact.objects.create(wa_id=to)
    except IntegrityError:
        return Contact.objects.get(wa_id=to)


def stopped_marketing(contact_ids, moment):
    """The customers stopped marketing messages (asked the bot, in WhatsApp itself, or Meta refused
    one with MARKETING_STOPPED): opted out, so that nothing tries again. `contact_ids`: ids or a
    subquery of them. Returns how many changed."""
    return opt(contact_ids, opted_out=True, moment=moment)


def resumed_marketing(contact_ids):
    """The customers want marketing messages again."""
    return opt(contact_ids, opted_out=False, moment=None)


def opt(contact_ids, *, opted_out, moment):
    changing = Contact.objects.filter(pk__in=contact_ids, opted_out=not opted_out)
    if not events.wanted("contact.opted_out" if opted_out else "contact.opted_in"):
        return changing.update(opted_out=opted_out, opted_out_at=moment)
    with transaction.atomic():  # the change and its events
        changed = list(changing.only("pk", "wa_id", "user_id", "name"))
        Contact.objects.filter(pk__in=[contact.pk for contact in changed]).update(opted_out=opted_out,
                                                                                opted_out_at=moment)
        events.opted(changed, opted_out)
    return len(changed)


def find(wa_id):
    """The contact a number (either Brazilian form) or a BSUID names, or None; never creates one."""
    contact = None
    if wa_id.isdigit():
        contact = Contact.objects.filter(wa_id__in=variants(wa_id)).first()
    if contact is None and wa_id:
        contact = Contact.objects.filter(user_id=wa_id).first()
    return contact


def link(message, wa_id):
    """Meta resolved the number we were given to `wa_id` (a Brazilian mobile number written with
    or without its ninth digit): make the contact that one, so the number never makes two contacts."""
    contact = message.contact
    if not contact.wa_id:
        return
    existing = Contact.objects.filter(wa_id=wa_id).first()
    if existing is None:
        Contact.objects.filter(pk=contact.pk).update(wa_id=wa_id)
        return
    with transaction.atomic():
        Message.objects.filter(contact=contact).update(contact=existing)
        if not contact.sessions.exists():
            contact.delete()

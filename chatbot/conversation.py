"""Conversations: every inbound message belongs to the contact's open session (ticket) on its
business number; the bot (`bot.decide`, pure) answers while the session is with it, and people
take over after a handoff.

A session's turns are serialised by a row lock on the session: two messages arriving together
never run the bot twice or in parallel, and a session handed to a person is re-read inside the
lock, so it never gets a bot reply. A turn takes every not-yet-handled message of the contact in
time order, so the bot answers them in the order the customer wrote them, whichever task ran first.
"""

import logging
import time
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_tasks import task

from . import assignment, bot, campaigns, contacts, csat, events, sending
from .bot import BotState
from .models import (
    BotSettings,
    BusinessHours,
    Department,
    Flow,
    FlowStep,
    Holiday,
    KeywordRule,
    Message,
    PhoneNumber,
    Session,
    fit,
)
from .whatsapp.vocabulary import FOLLOW_UP_TYPES, MessageType

logger = logging.getLogger(__name__)

SPAM_WINDOW = timedelta(minutes=1)


def lock(session_id, *related):
    """The session's row, locked until the transaction ends (only its own row: not the contact's or
    the number's it is read with), with `related` rows read alongside."""
    return Session.objects.select_for_update(of=("self",)).select_related(*related).get(pk=session_id)


def open_session(contact, phone_number, moment, *, new_contact=False, survey=False):
    """The contact's open session on this number, locked for this transaction, created if none.

    `new_contact`: the contact was created in this transaction, so no other transaction can have
    a session for it yet: no lookup, and no savepoint for a racing insert.
    `survey`: when none is open, the closed one whose satisfaction survey a message written at
    `moment` may answer (`csat.awaiting`), rather than a new one; the caller checks the answer.
    """
    if new_contact:
        session = Session.objects.create(contact=contact, phone_number=phone_number, started_at=moment,
                                         last_message_at=moment)
        events.conversation(session, "conversation.created")
        return session
    sessions = Session.objects.select_for_update().filter(contact=contact, phone_number=phone_number)
    session = sessions.exclude(status=Session.Status.CLOSED).first()
    if session is None and survey:
        session = csat.awaiting(sessions, moment)
    if session is None:
        try:
            with transaction.atomic():
                session = Session.objects.create(
                    contact=contact, phone_number=phone_number, started_at=moment, last_message_at=moment
                )
                events.conversation(session, "conversation.created")
        except IntegrityError:
            # The one-open-session constraint: another worker opened it first; use that one.
            session = sessions.exclude(status=Session.Status.CLOSED).get()
    session.contact, session.phone_number = contact, phone_number  # the rows in hand: no lazy reads
    return session


# The configuration is read at most this often per process: eight queries saved on every turn,
# and an owner's change in the admin reaches every worker within this many seconds.
CONFIG_TTL = 5.0
_config_cache = {"at": float("-inf"), "config": None, "settings": None, "numbers": {}}


def load_config():
    """A snapshot of the bot's configuration and settings row, (config, settings), at most
    CONFIG_TTL seconds old."""
    if time.monotonic() - _config_cache["at"] > CONFIG_TTL:
        settings_row = BotSettings.load()
        _config_cache.update(config=read_config(settings_row), settings=settings_row, numbers={},
                             at=time.monotonic())
    return _config_cache["config"], _config_cache["settings"]


def business_number(phone_number_id, display=""):
    """The business number's row (created on first sight), kept with the configuration snapshot:
    every inbound message needs it, and it changes only in the admin. A number deleted in the
    meantime fails the webhook event's commit (foreign key), which is retried after the snapshot.
    A row created here is kept only once it commits: another thread of this process must not
    use a row its own transaction cannot see."""
    load_config()
    numbers = _config_cache["numbers"]
    if phone_number_id in numbers:
        return numbers[phone_number_id]
    number, created = PhoneNumber.objects.get_or_create(
        **fit(PhoneNumber, {"phone_number_id": phone_number_id}),
        defaults=fit(PhoneNumber, {"display_phone_number": display}),
    )
    if created:
        transaction.on_commit(lambda: numbers.setdefault(phone_number_id, number))
    else:
        numbers[phone_number_id] = number
    return number


def step_options(rows):
    targets = {"handoff": "department_id", "step": "next_step_id"}
    return tuple(
        bot.Option(id=f"o{row.pk}", title=row.title, action=row.action, reply=row.reply_text,
                   target=getattr(row, targets[row.action]) if row.action in targets else None)
        for row in rows
    )


def read_config(texts):
    """The bot's configuration (admin-edited rows) as `bot.Config`."""
    steps = {
        step.pk: bot.Step(id=step.pk, text=step.text, options=step_options(step.options.all()), save_as=step.save_as,
                          next_step=step.next_step_id)
        for step in FlowStep.objects.filter(flow__is_active=True).prefetch_related("options")
    }
    flows = list(Flow.objects.filter(is_active=True))
    departments = list(Department.objects.filter(is_active=True))
    menu = tuple(
        [bot.Option(id=f"d{department.pk}", title=department.name, action="handoff", target=department.pk)
         for department in departments]
        + [bot.Option(id=f"f{flow.pk}", title=flow.menu_title, action="flow", target=flow.pk)
           for flow in flows if flow.menu_title]
    )
    rules = tuple(
        bot.Rule(match=rule.match, pattern=rule.pattern, action=rule.action,
                 target=rule.department_id if rule.action == "handoff" else rule.flow_id, reply=rule.reply_text)
        for rule in KeywordRule.objects.filter(is_active=True)
    )
    return bot.Config(
        texts={
            "greeting": texts.greeting, "menu": texts.menu_text, "menu_button": texts.menu_button,
            "human_option": texts.human_option, "fallback": texts.fallback_text,
            "out_of_hours": texts.out_of_hours_text, "opt_out_confirm": texts.opt_out_confirm_text,
            "opt_out_done": texts.opt_out_done_text, "opt_in": texts.opt_in_text,
        },
        menu=menu,
        steps=steps,
        flows={flow.pk: flow.first_step_id for flow in flows},
        departments={department.pk: department.name for department in departments},
        rules=rules,
        hours=bot.weekly_hours(BusinessHours.objects.values_list("weekday", "opens", "closes")),
        holidays=frozenset(Holiday.objects.values_list("date", flat=True)),
        fallback_limit=texts.fallback_limit,
    )


@task()
@transaction.atomic
def handle_inbound_message(message_id):
    """The follow-up of one stored inbound message, as a task: the safety net for a message whose
    turn failed where it was applied (`inbound.apply_inbound`); a no-op once handled."""
    message = Message.objects.select_related("contact", "phone_number").get(pk=message_id)
    if not message.session_id:
        follow_up(message)


# A failed turn is tried again this much later, by then in a transaction of its own.
TURN_RETRY_DELAY = timedelta(seconds=10)


def schedule_turn(message_id):
    handle_inbound_message.using(run_after=timezone.now() + TURN_RETRY_DELAY).enqueue(message_id)


def follow_up(message, *, new_contact=False, quiet_until=None):
    """Attach the contact's unhandled messages, `message` among them, to their open session in time
    order, and let the bot answer them while the session is with it. Runs in the caller's
    transaction, which holds the session's row lock until it commits.

    `new_contact`: the contact was created in this transaction, so `message` is its only message.
    `quiet_until`: the contact's last inbound time before this transaction, which spares the spam
    guard its count when that is over a minute before the message.
    An answer to the survey of the conversation just closed stays there, and opens none (`csat`).
    """
    session = open_session(message.contact, message.phone_number, message.timestamp, new_contact=new_contact,
                           survey=True)
    if new_contact:
        waiting = [message]
    else:
        waiting = Message.objects.filter(
            contact=message.contact, phone_number=message.phone_number, direction=Message.Direction.IN,
            session__isnull=True,
        ).order_by("timestamp", "pk").select_related("contact")
    for pending in waiting:
        if session.status == Session.Status.CLOSED and csat.answer(session, pending, choice=choice_id(pending),
                                                                   texts=load_config()[1]):
            continue
        if session.status == Session.Status.CLOSED:
            session = open_session(message.contact, message.phone_number, pending.timestamp)
        attach(session, pending)
        if campaign_reply(session, pending):
            continue
        if session.status == Session.Status.BOT and pending.type == MessageType.CALL:
            # A missed call reaches a person, who calls back or writes: the bot has nothing to say
            # to a call, and the customer is told nothing (a call opens no window to write in).
            hand_off(session, department_id=session.department_id, now=timezone.now(), texts=None)
        elif session.status == Session.Status.BOT and not silent(pending):
            quiet = new_contact or (quiet_until is not None and quiet_until < pending.timestamp - SPAM_WINDOW)
            config, texts = load_config()
            take_turn(session, pending, config=config, texts=texts, quiet=quiet)
    session.save()
    return session


def campaign_reply(session, message):
    """A reply to a campaign (within 72 h of it) marks the conversation with it; a campaign with
    a department hands the conversation there instead of to the bot. True when handed."""
    campaign = campaigns.replied(message.contact, message.timestamp)
    if campaign is None or session.campaign_id is not None:
        return False
    session.campaign = campaign
    if campaign.department_id is None or session.status != Session.Status.BOT:
        return False
    hand_off(session, department_id=campaign.department_id, now=timezone.now(), texts=load_config()[1])
    return True


# Messages the bot does not answer: reactions, edits, deletions, Meta's system notices, missed calls
# (an operator calls back; "não entendi" to a call would be wrong).
SILENT_TYPES = FOLLOW_UP_TYPES | {MessageType.SYSTEM, MessageType.UNSUPPORTED, MessageType.CALL}


def silent(message):
    """Whether the bot leaves `message` alone: a silent type, or the customer's answer to our
    request to call them (an interactive reply with nothing to choose)."""
    payload = message.payload if isinstance(message.payload, dict) else {}
    return message.type in SILENT_TYPES or (
        message.type == MessageType.INTERACTIVE and payload.get("type") == "call_permission_reply")


# Messages whose text the bot reads: typed, or the title of a tapped button or list row.
READ_TYPES = {MessageType.TEXT, MessageType.BUTTON, MessageType.INTERACTIVE}


def attach(session, message):
    Message.objects.filter(pk=message.pk).update(session=session)
    message.session = session
    if message.timestamp > session.last_message_at:
        session.last_message_at = message.timestamp
    if message.timestamp < session.started_at:  # an earlier message delivered after a later one
        session.started_at = message.timestamp
    session.unread += 1


def take_turn(session, message, *, config, texts, quiet=False):
    """One bot turn for `message`. `quiet`: the contact wrote nothing in the minute before it, as
    far as committed rows show (the count would find this message alone)."""
    contact = message.contact
    now = timezone.now()
    if contact.blocked or not contact.window_open(now):
        return  # nothing may be sent (blocked), or the message is too old to answer (reprocessed)
    recent = 1 if quiet else Message.objects.filter(contact=contact, direction=Message.Direction.IN,
                                                    timestamp__gte=message.timestamp - SPAM_WINDOW).count()
    state = BotState.load(session.bot_state)
    turn = bot.Turn(
        text=message.text if message.type in READ_TYPES else "",
        choice=choice_id(message),
        state=state,
        now=timezone.localtime(now),
        new_session=not state.greeted,
        status=session.status,
        name=contact.name.split(" ")[0] if contact.name else "",
        muted=bool(session.muted_until and session.muted_until > now),
        over_limit=recent > settings.MESSAGES_PER_MINUTE,
    )
    decision = bot.decide(turn, config)
    session.bot_state = replace(decision.state, greeted=True).dump()
    if decision.answers:
        session.data = {**(session.data if isinstance(session.data, dict) else {}), **decision.answers}
    if decision.mute:
        session.muted_until = now + timedelta(minutes=texts.spam_cooldown_minutes)
        logger.warning("session %s: %s messages in a minute; bot silent until %s", session.pk, recent,
                       session.muted_until)
    sending.queue_all(phone_number=session.phone_number, contact=session.contact, messages=decision.replies,
                       source=Message.Source.BOT, session=session)
    if decision.opt_out:
        contacts.stopped_marketing([contact.pk], now)
    elif decision.opt_out is not None:
        contacts.resumed_marketing([contact.pk])
    if decision.handoff is not None:
        hand_off(session, department_id=decision.handoff, now=now, texts=texts)
    elif decision.close:
        close(session, now=now, message=False)


def choice_id(message):
    """The id of the button or list row the customer tapped, if that is what the message is: ""
    for anything else, whatever shape the payload came in (the parser keeps odd ones as sent)."""
    payload = message.payload if isinstance(message.payload, dict) else {}
    if message.type == "interactive":
        replies = [payload.get(kind) for kind in ("button_reply", "list_reply")]
        return next((identifier(reply.get("id")) for reply in replies if isinstance(reply, dict)), "")
    if message.type == "button":
        return identifier(payload.get("payload"))
    return ""


def identifier(value):
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def send(session, reply, context=None):
    """Queue one reply in the session (inside the caller's transaction: sent only if it commits)."""
    if context:
        reply = {**reply, "context": context}
    return sending.queue(phone_number=session.phone_number, contact=session.contact, message=reply,
                          source=Message.Source.BOT, session=session)


# --- Handoff and the operators' actions ------------------------------------------------------


def hand_off(session, *, department_id, now, texts):
    """Put the session in a department's queue and tell the customer their place in it (unless
    `texts` is None)."""
    department = Department.objects.filter(pk=department_id, is_active=True).first() if department_id else None
    session.status = Session.Status.WAITING
    session.department = department
    session.waiting_since = now
    session.bot_state = replace(BotState.load(session.bot_state), timeout_notified=False).dump()
    session.save()
    events.conversation(session, "conversation.waiting")
    assignment.after_commit(departments=[session.department_id])
    if texts is None:
        return
    ahead = Session.objects.filter(status=Session.Status.WAITING, waiting_since__lt=now).exclude(pk=session.pk)
    if department:
        ahead = ahead.filter(department=department)
    body = bot.fill(texts.handoff_text, department=department.name if department else "atendimento",
                    position=ahead.count() + 1, name=session.contact.name)
    send(session, bot.text(body))


def close(session, *, now=None, message=True):
    """Close a session (once: False when it already was); the customer's next message opens a
    new one, unless it answers the satisfaction survey, asked after the closing text (`csat.ask`)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = lock(session.pk, "contact", "phone_number")
        if locked.status == Session.Status.CLOSED:
            return False
        locked.status = Session.Status.CLOSED
        locked.closed_at = now
        locked.save()
        events.conversation(locked, "conversation.closed")
        assignment.after_commit(operators=[locked.assigned_to_id])  # they have room again
        texts = load_config()[1]
        if message and texts.closing_text and locked.contact.window_open(now):
            send(locked, bot.text(bot.fill(texts.closing_text, name=locked.contact.name)))
        csat.ask(locked, texts=texts, now=now)
    # The caller's copy may be saved whole after this (the bot's turn): it must not undo these.
    session.status, session.closed_at, session.csat_asked_at = locked.status, locked.closed_at, locked.csat_asked_at
    return True


# --- Time-driven work (the worker's inbox thread calls `sweep` every minute) -----------------


def sweep(now=None):
    """Close idle sessions and tell customers waiting too long; returns (closed, notified)."""
    now = now or timezone.now()
    texts = load_config()[1]
    closed = notified = 0
    idle = Session.objects.exclude(status=Session.Status.CLOSED).filter(
        last_message_at__lt=now - timedelta(hours=texts.inactivity_hours)
    )
    for session_id in idle.values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            session = lock(session_id, "contact", "phone_number")
            if session.status != Session.Status.CLOSED:
                close(session, now=now)
                closed += 1
    if texts.handoff_timeout_text or texts.followup_template:
        late = Session.objects.filter(status=Session.Status.WAITING, assigned_to__isnull=True,
                                      waiting_since__lt=now - timedelta(minutes=texts.handoff_timeout_minutes))
        # Not yet told: no such key (a new state stores only what differs from the default) or false.
        late = late.filter(Q(bot_state__timeout_notified__isnull=True) | Q(bot_state__timeout_notified=False))
        for session_id in late.values_list("pk", flat=True)[:500]:
            with transaction.atomic():
                session = lock(session_id, "contact", "phone_number")
                if session.status == Session.Status.WAITING and not BotState.load(session.bot_state).timeout_notified:
                    notify_waiting(session, texts, now)
                    notified += 1
    return closed, notified


def notify_waiting(session, texts, now):
    """Nobody took the session in time: say so, by template when the 24-hour window has closed."""
    session.bot_state = replace(BotState.load(session.bot_state), timeout_notified=True).dump()
    session.save(update_fields=["bot_state"])
    if session.contact.window_open(now) and texts.handoff_timeout_text:
        send(session, bot.text(bot.fill(texts.handoff_timeout_text, name=session.contact.name)))
    elif texts.followup_template:
        send(session, {"type": "template", "template": {
            "name": texts.followup_template, "language": {"code": texts.followup_template_language}}})

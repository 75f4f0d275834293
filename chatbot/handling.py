"""People handling conversations: take one (the next waiting, or a colleague's only when asked
to), transfer, hand back to the bot, reopen, start one with a customer. Closing is
`conversation.close` (the bot and the sweeps close too).

Each action re-reads the session under its row lock, so two operators acting at once end in one
state, and never acts on a closed conversation but to reopen it. An operator a conversation leaves
has room again, and a conversation transferred to a department enters its queue: both hand out
waiting conversations once the action commits (`assignment`). People are not held to the limit of
automatic assignment (`max_conversations`): taking, or assigning to a colleague by name, may go over.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import assignment, bot, conversation, events
from .bot import BotState
from .models import Session


class ColleagueHasIt(Exception):
    """The conversation is another operator's: taking it (or answering in it) must be asked for."""

    def __init__(self, colleague):
        super().__init__(str(colleague))
        self.colleague = colleague


def colleague(session, user):
    """The other operator the conversation is with, or None."""
    if session.status == Session.Status.OPEN and session.assigned_to_id and session.assigned_to_id != user.pk:
        return session.assigned_to
    return None


def take(session, user, *, override=False):
    """An operator takes the session: the bot stops, the customer is theirs. False when it has
    closed; ColleagueHasIt when another operator has it, unless `override`."""
    with transaction.atomic():
        locked = conversation.lock(session.pk, "assigned_to")
        if locked.status == Session.Status.CLOSED:
            return False
        other = colleague(locked, user)
        if other and not override:
            raise ColleagueHasIt(other)
        now = timezone.now()
        changed = locked.status != Session.Status.OPEN or locked.assigned_to_id != user.pk
        if locked.assigned_to_id != user.pk:
            locked.assigned_at = now
        locked.status = Session.Status.OPEN
        locked.assigned_to = user
        locked.first_response_at = locked.first_response_at or now
        locked.unread = 0
        locked.save()
        if changed:
            events.conversation(locked, "conversation.assigned")
        assignment.after_commit(operators=[other.pk if other else None])
    return True


def take_next(user, candidates):
    """Take the one who has waited longest among `candidates` (waiting sessions, e.g. the
    operator's queue); None when nobody waits. Two operators at once never get the same one."""
    with transaction.atomic():
        session = (candidates.select_for_update(skip_locked=True, of=("self",))
                   .filter(status=Session.Status.WAITING, assigned_to__isnull=True)
                   .order_by("waiting_since", "pk").first())
        if session is None:
            return None
        take(session, user)
    return session


def transfer(session, *, department=None, user=None):
    """To another department's queue, or to an operator; False when the session has closed. The
    customer is told of a new department (BotSettings.transfer_text)."""
    texts = conversation.load_config()[1]
    with transaction.atomic():
        locked = conversation.lock(session.pk, "contact", "phone_number")
        if locked.status == Session.Status.CLOSED:
            return False
        moved = department is not None and department.pk != locked.department_id
        previous = locked.assigned_to_id if locked.status == Session.Status.OPEN else None
        given_to = user.pk if user else None
        locked.department = department or locked.department
        if locked.assigned_to_id != given_to:
            locked.assigned_at = timezone.now() if user else None
        locked.assigned_to = user
        locked.status = Session.Status.OPEN if user else Session.Status.WAITING
        locked.waiting_since = locked.waiting_since if user else timezone.now()
        locked.save()
        events.conversation(locked, "conversation.assigned" if user else "conversation.waiting")
        # The operator it leaves has room again; the department's queue has one more.
        assignment.after_commit(departments=[] if user else [locked.department_id],
                                operators=[previous] if previous != given_to else [])
        if moved and texts.transfer_text and locked.contact.window_open():
            conversation.send(locked, bot.text(bot.fill(texts.transfer_text, department=department.name,
                                                        name=locked.contact.name)))
    return True


def return_to_bot(session):
    """The bot answers the customer again, who is told so (BotSettings.return_to_bot_text); False
    when the session has closed."""
    texts = conversation.load_config()[1]
    with transaction.atomic():
        locked = conversation.lock(session.pk, "contact", "phone_number")
        if locked.status == Session.Status.CLOSED:
            return False
        previous = locked.assigned_to_id if locked.status == Session.Status.OPEN else None
        locked.status = Session.Status.BOT
        locked.assigned_to, locked.assigned_at = None, None
        locked.bot_state = BotState(greeted=True).dump()
        locked.save()
        assignment.after_commit(operators=[previous])
        if texts.return_to_bot_text and locked.contact.window_open():
            conversation.send(locked, bot.text(bot.fill(texts.return_to_bot_text, name=locked.contact.name)))
    return True


def reopen(session, user):
    """A closed conversation open again, with `user`; when the customer already has an open one on
    that number, that one (the new one is where they write now)."""
    with transaction.atomic():
        locked = conversation.lock(session.pk)
        if locked.status != Session.Status.CLOSED:
            return locked
        try:
            with transaction.atomic():
                Session.objects.filter(pk=locked.pk).update(status=Session.Status.OPEN, assigned_to=user,
                                                            assigned_at=timezone.now(), closed_at=None)
                events.conversation(locked, "conversation.assigned")
        except IntegrityError:  # one open conversation per contact and number
            return Session.objects.exclude(status=Session.Status.CLOSED).get(contact_id=locked.contact_id,
                                                                            phone_number_id=locked.phone_number_id)
    return Session.objects.get(pk=locked.pk)


def start(contact, phone_number, user):
    """The conversation an operator opens with a customer: theirs, with `user` (taken if the bot
    or the queue had it)."""
    with transaction.atomic():
        session = conversation.open_session(contact, phone_number, timezone.now())
        if session.status != Session.Status.OPEN or session.assigned_to_id != user.pk:
            previous = session.assigned_to_id if session.status == Session.Status.OPEN else None
            session.status, session.assigned_to, session.assigned_at = Session.Status.OPEN, user, timezone.now()
            session.save(update_fields=["status", "assigned_to", "assigned_at"])
            events.conversation(session, "conversation.assigned")
            assignment.after_commit(operators=[previous])
    return session

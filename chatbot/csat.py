"""The satisfaction survey (CSAT): when a conversation a person handled closes, the customer is
asked to rate it from 1 to 5, once, and the answer is kept on that closed session.

- `ask`: `conversation.close` calls it under the session's row lock, after the closing text (the
  customer reads "we are closing", then the question). Inside the 24-hour window the question is
  a list of five rows (`csat:5` … `csat:1`); outside it, the approved template named in
  `BotSettings.csat_template`, or nothing. `csat_asked_at`, set under the lock, makes it once per
  conversation: a second close (or two racing: the second finds the session closed), a reopen
  and close again, all find it set. Never to opted-out or blocked customers.
- `awaiting`: when the customer writes and has no open conversation, `conversation.open_session`
  asks it for the latest closed one, locked, if its survey was asked within ANSWER_WINDOW.
- `answer`: whether a message answers that survey: a tapped row, a quick-reply button of the
  template, or a text that is only a score ("4", "nota 4", "4 estrelas", "4/5", "⭐⭐⭐⭐", "bom").
  An answer is recorded on the closed session and opens no conversation (the bot does not greet);
  anything else is a message like any other, and the caller opens a new conversation, which ends
  the survey (it only ever waits on the customer's latest conversation). A score of 1 or 2 asks
  for a comment when `csat_comment_question` is set: the next text is the comment, unless it is
  "pular" or "não"; then `csat_thanks`. Tapping the survey again changes nothing.

The parsing and the question are pure (`rating`, `question`); the rest runs inside the caller's
transaction, like the bot's turn, and queues its messages the way the bot does.
"""

import logging
import re
from dataclasses import replace
from datetime import timedelta

from django.utils import timezone

from . import bot, events, sending
from .bot import BotState
from .models import BotSettings, Message, Session, Template
from .whatsapp import validation
from .whatsapp.vocabulary import FOLLOW_UP_TYPES, MessageType

logger = logging.getLogger(__name__)

# An answer counts this long after the question: the customer-service window's length, and
# about as long as a customer remembers being asked.
ANSWER_WINDOW = timedelta(hours=24)
# Meta's timestamps are whole seconds from Meta's clock: a quick answer may look a little older
# than the question.
CLOCK_SLACK = timedelta(minutes=1)
LOW_SCORE = 2  # and below: the comment question, when there is one

# The list's rows, best first (Meta: row title ≤ 24 characters, id ≤ 200).
TITLES = {5: "Ótimo", 4: "Bom", 3: "Regular", 2: "Ruim", 1: "Péssimo"}
ROW_ID = "csat:"
WORDS = {"otimo": 5, "bom": 4, "regular": 3, "ruim": 2, "pessimo": 1}  # as `bot.normalize` leaves them
# Only a score, as customers type it (normalized): "4", "nota 4", "4 estrelas", "4/5", "5 de 5", "4 – Bom".
SCORE = re.compile(r"(?:nota )?([1-5])(?: (?:estrelas?|de 5|5))?(?: (?:otimo|bom|regular|ruim|pessimo))?")
SKIP_WORDS = {"pular", "pula", "pulo", "nao", "n", "nada", "nao obrigado", "nao obrigada", "skip"}
STAR = "⭐"


# --- Pure: the question, and the score an answer gives -------------------------------------


def question(texts, name=""):
    """The survey as a list message (cloud-api.md §7: button ≤ 20, rows ≤ 10, titles ≤ 24)."""
    button = (texts.csat_button or "Avaliar")[:20]
    # Meta refuses an empty body: an owner who blanked the question gets the default one.
    body = bot.fill(texts.csat_question, name=name).strip() or BotSettings._meta.get_field("csat_question").default
    rows = [{"id": f"{ROW_ID}{score}", "title": f"{score} – {TITLES[score]}"} for score in sorted(TITLES, reverse=True)]
    return {"type": "interactive", "interactive": {
        "type": "list", "body": {"text": body[:4096]},
        "action": {"button": button, "sections": [{"title": button[:24], "rows": rows}]}}}


def rating(text, choice=""):
    """The score (1-5) a customer's answer gives, or None: a tapped survey row (`csat:N`), or a
    quick-reply button or text that is only a score."""
    if choice.startswith(ROW_ID):
        tail = choice.removeprefix(ROW_ID)
        return int(tail) if tail in {"1", "2", "3", "4", "5"} else None
    return score_in(choice) or score_in(text)


def score_in(text):
    stars = "".join(text.split()).replace("\ufe0f", "")
    if stars and set(stars) == {STAR}:
        return len(stars) if len(stars) <= 5 else None
    words = bot.normalize(text)
    if words in WORDS:
        return WORDS[words]
    match = SCORE.fullmatch(words)
    return int(match[1]) if match else None


# --- Asking -----------------------------------------------------------------------------------


def ask(session, *, texts, now):
    """Ask the customer of `session` (just closed, locked, with its contact and number) to rate
    it, when a person handled it and it was not asked before; True when the survey was queued."""
    contact = session.contact
    if not texts.csat_enabled or session.csat_asked_at or not (session.first_response_at or session.assigned_to_id):
        return False
    if contact.opted_out or contact.blocked or not contact.address:
        return False
    message = question(texts, contact.name) if contact.window_open(now) else template(texts)
    if message is None:
        return False  # outside the window without a usable template: no survey
    sending.queue(phone_number=session.phone_number, contact=contact, message=message, source=Message.Source.BOT,
                  session=session)
    session.csat_asked_at = now
    session.save(update_fields=["csat_asked_at"])
    return True


def template(texts):
    """The survey template for outside the window: named in the settings, approved in the synced
    table, and without parameters (we have none to give it); else None."""
    if not texts.csat_template:
        return None
    synced = Template.objects.filter(name=texts.csat_template, language=texts.csat_template_language,
                                     status="APPROVED").first()
    if synced is None:
        return None
    message = {"type": "template", "template": {"name": synced.name, "language": {"code": synced.language}}}
    try:
        validation.check_template_parameters(message, synced.components)
    except validation.InvalidMessage:
        logger.warning("survey template %s (%s) takes parameters: not sent", synced.name, synced.language)
        return None
    return message


# --- The answer -------------------------------------------------------------------------------


def waits(session, moment):
    """Whether `session`'s survey was asked and a message written at `moment` may answer it."""
    asked = session.csat_asked_at
    return asked is not None and asked - CLOCK_SLACK <= moment <= asked + ANSWER_WINDOW


def awaiting(sessions, moment):
    """The latest of `sessions` (one contact's on one number, none open when they were read),
    locked, when its survey may still be answered at `moment`; else None."""
    latest = sessions.order_by("-pk").first()
    if latest is None or not waits(latest, moment):
        return None
    # While this transaction waited for the lock, another may have opened a conversation (after
    # a message that was no answer): that one is the latest now, and the survey is over.
    newer = Session.objects.filter(contact_id=latest.contact_id, phone_number_id=latest.phone_number_id,
                                   pk__gt=latest.pk)
    return None if newer.exists() else latest


def answer(session, message, *, choice, texts):
    """Take `message` as an answer to the survey of `session` (closed, locked) if it is one: True
    when it is (kept in that conversation, and the customer thanked or asked for a comment),
    False for a message like any other."""
    if not waits(session, message.timestamp):
        return False
    if message.type in FOLLOW_UP_TYPES:
        attach(session, message)  # a reaction to the question, an edit: no new conversation
        return True
    tapped = message.type in (MessageType.INTERACTIVE, MessageType.BUTTON)
    score = rating(message.text if tapped or message.type == MessageType.TEXT else "", choice)
    state = BotState.load(session.bot_state)
    now = timezone.now()
    if session.csat_score is None and score is not None:
        attach(session, message)
        record(session, score, moment=max(message.timestamp, session.csat_asked_at), state=state, texts=texts,
               now=now)
    elif session.csat_score is not None and tapped and score is not None:
        attach(session, message)  # the survey tapped again: one answer per conversation
    elif state.csat_comment and message.type == MessageType.TEXT:
        attach(session, message)
        if bot.normalize(message.text) not in SKIP_WORDS:
            session.csat_comment = message.text.strip()[:4096]
        session.bot_state = replace(state, csat_comment=False).dump()
        session.save(update_fields=["csat_comment", "bot_state"])
        reply(session, texts.csat_thanks, now)
    else:
        return False
    return True


def record(session, score, *, moment, state, texts, now):
    session.csat_score, session.csat_answered_at = score, moment
    if score <= LOW_SCORE and texts.csat_comment_question:
        session.csat_comment_asked_at = now
        session.bot_state = replace(state, csat_comment=True).dump()
        reply(session, texts.csat_comment_question, now)
    else:
        reply(session, texts.csat_thanks, now)
    session.save(update_fields=["csat_score", "csat_answered_at", "csat_comment_asked_at", "bot_state"])
    # Sent again, now with the score, for systems that follow satisfaction.
    events.conversation(session, "conversation.closed")


def attach(session, message):
    """The message belongs to the closed conversation it answers (seen in its thread); it is no
    new activity for operators (no unread count, no newer place in the lists)."""
    Message.objects.filter(pk=message.pk).update(session=session)
    message.session = session


def reply(session, body, now):
    contact = session.contact
    if body and not contact.blocked and contact.window_open(now):
        sending.queue(phone_number=session.phone_number, contact=contact,
                      message=bot.text(bot.fill(body, name=contact.name)), source=Message.Source.BOT, session=session)

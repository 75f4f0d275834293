"""The bot, pure: (session state, the customer's message, configuration) → replies and next state.

No I/O: `conversation.py` loads the configuration, locks the session, runs `decide` and persists
and sends what it returns. What the bot remembers between turns is a `BotState`, stored as JSON on
the session; the answers a flow collects come back in `Decision.answers`, kept on the session for
the operators. Rules run in order, and the first that answers ends the turn:

1. a session waiting for or with a person gets no bot reply;
2. the spam guard (a contact over MESSAGES_PER_MINUTE) silences the bot for a cool-down;
3. out of business hours the customer is told so once, then the bot carries on;
4. the answer to a pending confirmation (marketing opt-out);
5. global words: menu, atendente/humano (a person), sair/parar (opt-out), then the active flow step;
6. a main-menu choice; 7. keyword rules; 8. greeting and menu on a new session;
9. fallback, offering a person after repeated misunderstandings.
"""

import re
import unicodedata
from dataclasses import dataclass, field, fields, replace
from datetime import datetime

HUMAN_WORDS = {"atendente", "humano", "pessoa", "falar com atendente", "falar com alguem", "agent", "human"}
MENU_WORDS = {"menu", "inicio", "opcoes", "voltar ao menu"}
STOP_WORDS = {"sair", "parar", "stop", "pare", "cancelar inscricao"}
# A marketing template's "Parar promoções" quick-reply, or those words typed: nothing to confirm.
STOP_PROMOTIONS = {"parar promocoes", "parar as promocoes", "parar de receber promocoes", "nao quero promocoes",
                   "cancelar promocoes", "stop promotions"}
YES_WORDS = {"sim", "s", "yes", "confirmo", "quero"}
OPT_IN_WORDS = {"voltar", "start", "assinar"}
HUMAN_ID, MENU_ID = "human", "menu"


def normalize(text):
    """Lowercase, no accents, single spaces: how customers' words are compared."""
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


# --- Configuration snapshot (built by conversation.load_config) --------------------------------


@dataclass(frozen=True)
class Option:
    id: str
    title: str
    action: str  # reply | step | flow | menu | handoff | close
    target: int | None = None  # step, flow or department id
    reply: str = ""


@dataclass(frozen=True)
class Step:
    id: int
    text: str
    options: tuple = ()
    save_as: str = ""
    next_step: int | None = None


@dataclass(frozen=True)
class Rule:
    match: str  # exact | contains | regex
    pattern: str
    action: str
    target: int | None = None
    reply: str = ""


@dataclass(frozen=True)
class Config:
    texts: dict
    menu: tuple = ()  # Options: departments (handoff) and flows
    steps: dict = field(default_factory=dict)
    flows: dict = field(default_factory=dict)  # flow id -> first step id
    departments: dict = field(default_factory=dict)  # id -> name
    rules: tuple = ()
    hours: dict = field(default_factory=dict)  # weekday -> [(opens, closes)]
    holidays: frozenset = frozenset()
    fallback_limit: int = 2


@dataclass(frozen=True)
class BotState:
    """What the bot remembers between turns of one session (`Session.bot_state`, as JSON)."""

    greeted: bool = False  # the greeting was given
    menu: bool = False  # the main menu was the last thing shown: a number picks its option
    step: int | None = None  # the flow step waiting for an answer
    misses: int = 0  # messages not understood in a row
    confirm: str = ""  # a question waiting for a yes: "opt_out"
    out_of_hours_on: str = ""  # the day (ISO date) the out-of-hours notice was given
    timeout_notified: bool = False  # the customer was told nobody took the conversation in time
    csat_comment: bool = False  # closed: the survey's comment question waits for the customer's words (csat.py)

    @classmethod
    def load(cls, data):
        """From the stored JSON, whatever it holds: unknown keys and values of the wrong type count
        as missing (a state saved by an older version, or edited in the admin)."""
        data = data if isinstance(data, dict) else {}
        kinds = {"greeted": bool, "menu": bool, "step": int, "misses": int, "confirm": str, "out_of_hours_on": str,
                 "timeout_notified": bool, "csat_comment": bool}
        return cls(**{name: data[name] for name, kind in kinds.items()
                      if type(data.get(name)) is kind})  # exact type: True is not a step

    def dump(self):
        """The JSON to store: what differs from a new session's state."""
        return {item.name: getattr(self, item.name) for item in fields(self)
                if getattr(self, item.name) != item.default}


@dataclass(frozen=True)
class Turn:
    text: str
    choice: str  # the id of a tapped button or list row, else ""
    state: BotState
    now: datetime  # local time (TIME_ZONE)
    new_session: bool
    status: str = "bot"
    name: str = ""
    muted: bool = False
    over_limit: bool = False


@dataclass
class Decision:
    replies: list = field(default_factory=list)  # Cloud API message objects without "to"
    state: BotState = field(default_factory=BotState)
    answers: dict = field(default_factory=dict)  # answers a flow collected this turn, by name
    handoff: int | None = None  # department id (0: none chosen)
    close: bool = False
    opt_out: bool | None = None  # True: opted out, False: opted back in
    mute: bool = False

    def remember(self, **changes):
        self.state = replace(self.state, **changes)


# --- Messages ---------------------------------------------------------------------------------


def fill(template, **values):
    """Put {name}, {department}, … into an owner-written text; other braces are left alone."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def text(body):
    return {"type": "text", "text": {"body": body[:4096]}}


def choices(body, options, button):
    """Buttons for up to 3 options, a list for up to 10 (Meta's limits, cloud-api.md §7)."""
    options = options[:10]
    if not options:
        return text(body)
    if len(options) <= 3:
        buttons = [{"type": "reply", "reply": {"id": option.id, "title": option.title[:20]}} for option in options]
        return {"type": "interactive", "interactive": {"type": "button", "body": {"text": body[:1024]},
                                                       "action": {"buttons": buttons}}}
    rows = [{"id": option.id, "title": option.title[:24]} for option in options]
    return {"type": "interactive", "interactive": {"type": "list", "body": {"text": body[:4096]},
                                                   "action": {"button": button[:20],
                                                              "sections": [{"title": button[:24], "rows": rows}]}}}


def hours_label(config):
    names = ["seg", "ter", "qua", "qui", "sex", "sáb", "dom"]
    parts = []
    for weekday in sorted(config.hours):
        spans = ", ".join(f"{opens:%H:%M}–{closes:%H:%M}" for opens, closes in config.hours[weekday])
        parts.append(f"{names[weekday]} {spans}")
    return "; ".join(parts)


def is_open(config, now):
    """Whether `now` (local time) is inside business hours; no hours set means always open."""
    if not config.hours:
        return True
    return any(opens <= now.time() < closes for opens, closes in open_spans(config, now.date()))


def open_spans(config, day):
    """The (opens, closes) times of `day` (a date): none on a holiday. The reports' business time
    adds up these spans, so that it and the bot agree on when the business is open."""
    return [] if day in config.holidays else config.hours.get(day.weekday(), [])


# --- The rules --------------------------------------------------------------------------------


def decide(turn, config):
    decision = Decision(state=turn.state)
    if turn.status != "bot":
        return decision
    if turn.muted:
        return decision
    if turn.over_limit:
        decision.mute = True
        return decision
    words = normalize(turn.text)
    if not is_open(config, turn.now) and decision.state.out_of_hours_on != turn.now.date().isoformat():
        decision.remember(out_of_hours_on=turn.now.date().isoformat())
        decision.replies.append(text(fill(config.texts["out_of_hours"], name=turn.name, hours=hours_label(config))))
    for rule in RULES:
        if rule(turn, config, words, decision):
            break
    return decision


def global_words(turn, config, words, decision):
    if words in MENU_WORDS or turn.choice == MENU_ID:
        return show_menu(turn, config, decision)
    if turn.choice == HUMAN_ID or words in HUMAN_WORDS or {"atendente", "humano"} & set(words.split()):
        return ask_for_person(turn, config, decision)
    if words in STOP_PROMOTIONS:
        decision.opt_out = True
        decision.replies.append(text(config.texts["opt_out_done"]))
        return True
    if words in STOP_WORDS:
        decision.remember(confirm="opt_out")
        decision.replies.append(text(config.texts["opt_out_confirm"]))
        return True
    if words in OPT_IN_WORDS:
        decision.opt_out = False
        decision.replies.append(text(config.texts["opt_in"]))
        return True
    return False


def confirmation(turn, config, words, decision):
    asked = decision.state.confirm
    decision.remember(confirm="")  # one message answers it, whatever it says
    if asked != "opt_out":
        return False
    if words in YES_WORDS:
        decision.opt_out = True
        decision.replies.append(text(config.texts["opt_out_done"]))
        return True
    return False  # anything else: carry on as a normal message


def flow_step(turn, config, words, decision):
    step = config.steps.get(decision.state.step)
    if step is None:
        decision.remember(step=None)
        return False
    option = pick(step.options, turn, words)
    if option:
        return act(option, turn, config, decision)
    if step.save_as and turn.text.strip():
        decision.answers[step.save_as] = turn.text.strip()[:1000]
        return go_to_step(step.next_step, turn, config, decision) if step.next_step else end_flow(decision)
    return False


def menu_choice(turn, config, words, decision):
    option = pick(config.menu, turn, words, numbered=decision.state.menu)
    return act(option, turn, config, decision) if option else False


def keyword_rules(turn, config, words, decision):
    for rule in config.rules:
        if matches(rule, turn.text, words):
            return act(Option(id="", title="", action=rule.action, target=rule.target, reply=rule.reply),
                       turn, config, decision)
    return False


def greeting(turn, config, words, decision):
    if not turn.new_session:
        return False
    decision.replies.append(text(fill(config.texts["greeting"], name=turn.name or "")))
    return show_menu(turn, config, decision)


def fallback(turn, config, words, decision):
    misses = decision.state.misses + 1
    decision.remember(misses=misses)
    body = config.texts["fallback"]
    if misses >= config.fallback_limit:
        human = Option(HUMAN_ID, config.texts["human_option"], "handoff")
        menu = Option(MENU_ID, "Menu", "menu")
        decision.replies.append(choices(body, [human, menu], config.texts["menu_button"]))
    else:
        decision.replies.append(text(body))
    return True


RULES = [confirmation, global_words, flow_step, menu_choice, keyword_rules, greeting, fallback]


# --- Actions ----------------------------------------------------------------------------------


def pick(options, turn, words, numbered=True):
    """The option the customer chose: tapped (its id), its title typed, or its number typed."""
    for option in options:
        if turn.choice and turn.choice == option.id:
            return option
    for option in options:
        if words and words == normalize(option.title):
            return option
    if numbered and words.isdigit() and 1 <= int(words) <= len(options):
        return options[int(words) - 1]
    return None


def matches(rule, raw, words):
    alternatives = [normalize(part) for part in rule.pattern.split(",") if normalize(part)]
    if rule.match == "exact":
        return words in alternatives
    if rule.match == "contains":
        return any(re.search(rf"\b{re.escape(part)}\b", words) for part in alternatives)
    try:
        return re.search(rule.pattern, raw, re.IGNORECASE) is not None
    except re.error:
        return False


def act(option, turn, config, decision):
    decision.remember(misses=0)
    if option.reply:
        decision.replies.append(text(fill(option.reply, name=turn.name)))
    if option.action == "handoff":
        decision.handoff = option.target or 0
        end_flow(decision)
    elif option.action == "close":
        decision.close = True
        end_flow(decision)
    elif option.action == "menu":
        return show_menu(turn, config, decision)
    elif option.action == "step":
        return go_to_step(option.target, turn, config, decision)
    elif option.action == "flow":
        return go_to_step(config.flows.get(option.target), turn, config, decision)
    return True


def show_menu(turn, config, decision):
    end_flow(decision)
    decision.remember(menu=True)
    decision.replies.append(choices(config.texts["menu"], list(config.menu), config.texts["menu_button"]))
    return True


def ask_for_person(turn, config, decision):
    """Hand off at once when there is one department; otherwise ask which."""
    handoffs = [option for option in config.menu if option.action == "handoff"]
    if len(handoffs) <= 1:
        decision.handoff = handoffs[0].target if handoffs else 0
        end_flow(decision)
        return True
    return show_menu(turn, config, decision)


def go_to_step(step_id, turn, config, decision):
    step = config.steps.get(step_id)
    if step is None:
        return end_flow(decision) or True
    decision.remember(step=step.id)
    decision.replies.append(choices(fill(step.text, name=turn.name), list(step.options), config.texts["menu_button"]))
    return True


def end_flow(decision):
    decision.remember(step=None, menu=False)
    return True


def weekly_hours(rows):
    """{weekday: [(opens, closes)]} from (weekday, opens, closes) rows."""
    hours = {}
    for weekday, opens, closes in rows:
        hours.setdefault(weekday, []).append((opens, closes))
    return hours


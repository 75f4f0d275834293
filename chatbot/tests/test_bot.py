"""The pure bot (chatbot/bot.py): each rule, flows and menus, with no database."""

from datetime import date, datetime, time

import pytest

from chatbot import bot

TEXTS = {
    "greeting": "Olá, {name}!", "menu": "Escolha:", "menu_button": "Ver opções", "human_option": "Falar com atendente",
    "fallback": "Não entendi.", "out_of_hours": "Fechados ({hours}).", "opt_out_confirm": "Confirma? SIM",
    "opt_out_done": "Pronto.", "opt_in": "Voltou!",
}
DEPARTMENTS = (bot.Option("d1", "Vendas", "handoff", 1), bot.Option("d2", "Suporte", "handoff", 2),
               bot.Option("d3", "Financeiro", "handoff", 3))
STEPS = {
    10: bot.Step(10, "Qual o número do pedido?", save_as="pedido", next_step=11),
    11: bot.Step(11, "Obrigado! Algo mais?",
                 options=(bot.Option("o1", "Sim", "menu"), bot.Option("o2", "Não", "close"))),
}
MONDAY_NOON = datetime(2026, 11, 23, 12, 0)
SUNDAY_NIGHT = datetime(2026, 11, 22, 22, 0)


def config(**overrides):
    values = {
        "texts": TEXTS, "menu": DEPARTMENTS + (bot.Option("f5", "Rastrear pedido", "flow", 5),),
        "steps": STEPS, "flows": {5: 10}, "departments": {1: "Vendas", 2: "Suporte", 3: "Financeiro"},
        "rules": (bot.Rule("contains", "preço, valor", "reply", reply="Veja nossos preços em loja.example"),
                  bot.Rule("regex", r"\bboleto\b", "handoff", target=3)),
        "hours": bot.weekly_hours([(day, time(8), time(18)) for day in range(5)]),
        "holidays": frozenset({date(2026, 12, 25)}), "fallback_limit": 2,
    }
    return bot.Config(**{**values, **overrides})


def turn(text="", choice="", state=None, now=MONDAY_NOON, new_session=False, **fields):
    """A turn; `state` a BotState, or a dict as stored on the session."""
    state = {"greeted": True} if state is None else state
    return bot.Turn(text=text, choice=choice, state=bot.BotState.load(state) if isinstance(state, dict) else state,
                    now=now, new_session=new_session, name="Maria", **fields)


def bodies(decision):
    found = []
    for reply in decision.replies:
        if reply["type"] == "text":
            found.append(reply["text"]["body"])
        else:
            found.append(reply["interactive"]["body"]["text"])
    return found


def test_a_new_session_gets_the_greeting_and_the_menu_as_a_list():
    decision = bot.decide(turn("oi", new_session=True), config())
    assert bodies(decision) == ["Olá, Maria!", "Escolha:"]
    menu = decision.replies[1]["interactive"]
    assert menu["type"] == "list"
    assert [row["title"] for row in menu["action"]["sections"][0]["rows"]] == [
        "Vendas", "Suporte", "Financeiro", "Rastrear pedido"]


def test_three_options_or_fewer_are_buttons():
    decision = bot.decide(turn("menu"), config(menu=DEPARTMENTS))
    assert decision.replies[0]["interactive"]["type"] == "button"
    assert len(decision.replies[0]["interactive"]["action"]["buttons"]) == 3


@pytest.mark.parametrize("status", ["waiting", "open", "closed"])
def test_no_bot_reply_while_a_person_has_the_session(status):
    decision = bot.decide(turn("oi?", status=status, new_session=True), config())
    assert decision.replies == [] and decision.handoff is None


def test_the_spam_guard_mutes_without_a_reply():
    decision = bot.decide(turn("oi", over_limit=True), config())
    assert decision.mute and decision.replies == []
    assert bot.decide(turn("menu", muted=True), config()).replies == []


def test_out_of_hours_is_said_once_per_day_then_the_bot_carries_on():
    first = bot.decide(turn("oi", now=SUNDAY_NIGHT, new_session=True), config())
    assert bodies(first)[0] == "Fechados (seg 08:00–18:00; ter 08:00–18:00; qua 08:00–18:00; qui 08:00–18:00; " \
                               "sex 08:00–18:00)."
    assert bodies(first)[1:] == ["Olá, Maria!", "Escolha:"]
    again = bot.decide(turn("menu", state=first.state, now=SUNDAY_NIGHT), config())
    assert bodies(again) == ["Escolha:"]


def test_holidays_are_out_of_hours():
    christmas = datetime(2026, 12, 25, 10, 0)
    assert bodies(bot.decide(turn("menu", now=christmas), config()))[0].startswith("Fechados")


def test_no_hours_configured_means_always_open():
    assert bodies(bot.decide(turn("menu", now=SUNDAY_NIGHT), config(hours={}))) == ["Escolha:"]


@pytest.mark.parametrize("words", ["menu", "MENU", "Início", "opções"])
def test_menu_words_show_the_menu(words):
    assert bodies(bot.decide(turn(words), config())) == ["Escolha:"]


@pytest.mark.parametrize("words", ["atendente", "quero falar com um atendente", "Humano!"])
def test_asking_for_a_person_offers_the_departments(words):
    decision = bot.decide(turn(words), config())
    assert bodies(decision) == ["Escolha:"] and decision.handoff is None


def test_asking_for_a_person_with_one_department_hands_off_at_once():
    decision = bot.decide(turn("atendente"), config(menu=DEPARTMENTS[:1]))
    assert decision.handoff == 1


@pytest.mark.parametrize("choice, text", [("d2", "Suporte"), ("", "suporte"), ("", "2")])
def test_a_menu_choice_hands_off_to_its_department(choice, text):
    decision = bot.decide(turn(text, choice=choice, state={"greeted": True, "menu": True}), config())
    assert decision.handoff == 2


def test_a_number_means_nothing_when_no_menu_was_shown():
    assert bot.decide(turn("2"), config()).handoff is None


def test_opt_out_needs_a_confirmation():
    asked = bot.decide(turn("parar"), config())
    assert bodies(asked) == ["Confirma? SIM"] and asked.opt_out is None
    done = bot.decide(turn("sim", state=asked.state), config())
    assert done.opt_out is True and bodies(done) == ["Pronto."]


@pytest.mark.parametrize("words", ["Parar promoções", "PARAR AS PROMOÇÕES", "não quero promoções"])
def test_the_parar_promocoes_button_opts_out_at_once(words):
    decision = bot.decide(turn(words, choice="Parar promoções"), config())
    assert decision.opt_out is True and bodies(decision) == ["Pronto."]


def test_opt_out_not_confirmed_is_a_normal_message():
    asked = bot.decide(turn("sair"), config())
    decision = bot.decide(turn("menu", state=asked.state), config())
    assert decision.opt_out is None and bodies(decision) == ["Escolha:"]
    assert decision.state.confirm == ""


def test_opting_back_in():
    assert bot.decide(turn("voltar"), config()).opt_out is False


def test_a_flow_asks_keeps_the_answer_and_offers_options():
    started = bot.decide(turn("Rastrear pedido", state={"greeted": True, "menu": True}), config())
    assert bodies(started) == ["Qual o número do pedido?"] and started.state.step == 10
    answered = bot.decide(turn("#4521", state=started.state), config())
    assert answered.answers == {"pedido": "#4521"}
    assert bodies(answered) == ["Obrigado! Algo mais?"]
    assert answered.replies[0]["interactive"]["type"] == "button"
    closed = bot.decide(turn("", choice="o2", state=answered.state), config())
    assert closed.close and closed.state.step is None


def test_keyword_rules_match_without_case_or_accents():
    assert bodies(bot.decide(turn("Qual o PRECO?"), config())) == ["Veja nossos preços em loja.example"]


def test_a_regular_expression_rule_can_hand_off():
    assert bot.decide(turn("preciso da 2a via do boleto"), config()).handoff == 3


def test_a_broken_regular_expression_never_crashes():
    rules = (bot.Rule("regex", "(unclosed", "reply", reply="x"),)
    assert bodies(bot.decide(turn("(unclosed"), config(rules=rules))) == ["Não entendi."]


def test_fallback_offers_a_person_after_repeated_misunderstandings():
    first = bot.decide(turn("blablabla"), config())
    assert first.replies == [{"type": "text", "text": {"body": "Não entendi."}}]
    second = bot.decide(turn("xyz", state=first.state), config())
    buttons = second.replies[0]["interactive"]["action"]["buttons"]
    assert [button["reply"]["id"] for button in buttons] == ["human", "menu"]
    person = bot.decide(turn("", choice="human", state=second.state), config())
    assert bodies(person) == ["Escolha:"]  # which department?


def test_owner_texts_with_unknown_braces_are_left_alone():
    texts = {**TEXTS, "greeting": "Oi {name}, use {cupom}!"}
    assert bodies(bot.decide(turn("oi", new_session=True), config(texts=texts)))[0] == "Oi Maria, use {cupom}!"


def test_every_reply_passes_metas_limits():
    from chatbot.whatsapp import validation

    long_titles = tuple(bot.Option(f"d{i}", "Departamento com nome longo " + str(i), "handoff", i) for i in range(12))
    for decision in [bot.decide(turn("oi", new_session=True), config(menu=long_titles)),
                     bot.decide(turn("x", state={"greeted": True, "misses": 5}), config())]:
        for reply in decision.replies:
            validation.clean_message({"to": "5511987654321", **reply})


def test_the_state_loads_whatever_is_stored_and_dumps_only_what_differs():
    assert bot.BotState.load(None) == bot.BotState()
    assert bot.BotState.load({"greeted": True, "step": True, "misses": "2", "menu": 1, "other": 5}) == \
        bot.BotState(greeted=True)
    state = bot.BotState(greeted=True, step=10, confirm="opt_out")
    assert state.dump() == {"greeted": True, "step": 10, "confirm": "opt_out"}
    assert bot.BotState.load(state.dump()) == state

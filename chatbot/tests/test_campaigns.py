"""Campaigns (chatbot/campaigns.py, campaign_content.py, campaign_sending.py) end to end against the
fake Graph API: the audience and its skips, the content checked before anything is queued, the
sending (conversations first, pacing, limit, window), pause/resume/cancel, and what Meta's answers do."""

import time as time_module
from datetime import datetime, time, timedelta
from unittest import mock

import pytest
from django.utils import timezone

from chatbot import campaign_sending, campaigns, conversation, failures, inbound, outbox, sending
from chatbot.campaign_content import CampaignRefused
from chatbot.models import Campaign, Contact, Department, Message, PhoneNumber, Recipient, Session, Template
from chatbot.tests.helpers import customers, post_signed

pytestmark = pytest.mark.django_db



PROMO_CONTENT = {"variables": {"1": "{first_name|cliente}", "2": "{attr:cupom|BEMVINDO}"},
                 "header": {"link": "https://loja.example/promo.jpg"}, "buttons": {"1": "{wa_id}"}}


def start(template, audience=None, name="Promoção", content=None, **options):
    content = PROMO_CONTENT if content is None else content
    plan = campaigns.plan(template_name=template.name, language=template.language,
                          audience=audience or {"labels": ["clientes"]}, **content)
    created = campaigns.create(name=name, plan=plan, **options)
    campaign_sending.wake()  # as the worker would within a second
    return created


def send_all():
    while outbox.drain():
        pass


def drain_for(count, seconds=10):
    """Drain in real time until `count` messages went out (a campaign is fed as the cap frees)."""
    deadline = time_module.monotonic() + seconds
    while Message.objects.filter(status="sent").count() < count and time_module.monotonic() < deadline:
        campaign_sending.wake()
        outbox.drain()
        time_module.sleep(0.02)


def later_by(delta):
    """The clock moved on by `delta`, still running."""
    real = timezone.now
    return mock.patch.object(timezone, "now", side_effect=lambda: real() + delta)


def test_each_recipient_gets_the_template_filled_from_their_contact(fake_graph, promo):
    ana, bia = customers(2)
    Contact.objects.filter(pk=ana.pk).update(name="Ana Souza", attributes={"cupom": "ANA10"})
    campaign = start(promo)
    send_all()
    bodies = {body["to"]: body for body in fake_graph.sent()}
    assert bodies[f"+{ana.wa_id}"]["template"] == {
        "name": "promo_semana", "language": {"code": "pt_BR"},
        "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://loja.example/promo.jpg"}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "ANA10"}]},
            {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": ana.wa_id}]},
        ]}
    # Bia has a name but no coupon: the fallback.
    assert bodies[f"+{bia.wa_id}"]["template"]["components"][1]["parameters"] == [
        {"type": "text", "text": "Cliente"}, {"type": "text", "text": "BEMVINDO"}]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED and campaign.finished_at is not None
    assert set(Message.objects.values_list("source", "status")) == {("campaign", "sent")}
    assert Recipient.objects.filter(state="queued", message__isnull=False).count() == 2


def test_skipped_contacts_are_counted_by_reason_and_never_sent(fake_graph, promo):
    fine, opted_out, blocked = customers(3)
    Contact.objects.filter(pk=opted_out.pk).update(opted_out=True)
    Contact.objects.filter(pk=blocked.pk).update(blocked=True)
    plan = campaigns.plan(template_name="promo_semana", language="pt_BR",
                          audience={"labels": ["clientes"], "wa_ids": ["11 98888-7777", "123"]}, **PROMO_CONTENT)
    assert plan.recipients == 2  # fine, and the listed new number
    assert dict(plan.skipped) == {"opted_out": 1, "blocked": 1, "invalid": 1}
    campaigns.create(name="x", plan=plan)
    send_all()
    assert sorted(body["to"] for body in fake_graph.sent()) == [f"+{fine.wa_id}", "+5511988887777"]


def test_an_opt_in_can_be_required(promo):
    with_opt_in, _without = customers(2)
    Contact.objects.filter(pk=with_opt_in.pk).update(opted_in_at=timezone.now())
    plan = campaigns.plan(template_name="promo_semana", language="pt_BR",
                          audience={"labels": ["clientes"], "require_opt_in": True}, **PROMO_CONTENT)
    assert (plan.recipients, dict(plan.skipped)) == (1, {"no_opt_in": 1})


def test_a_variable_with_no_value_and_no_fallback_skips_the_contact(aviso):
    has, _lacks = customers(2)
    Contact.objects.filter(pk=has.pk).update(attributes={"pedido": "A-1"})
    plan = campaigns.plan(template_name="aviso", language="pt_BR", audience={"labels": ["clientes"]},
                          variables={"1": "{name}", "2": "{attr:pedido}"})
    assert (plan.recipients, dict(plan.skipped)) == (1, {"incomplete": 1})
    assert plan.preview["template"]["components"][0]["parameters"][1] == {"type": "text", "text": "A-1"}


def test_audiences_by_attribute_and_last_contact(aviso):
    recent, old = customers(2)
    Contact.objects.filter(pk=recent.pk).update(attributes={"plano": "ouro"}, last_inbound_at=timezone.now())
    Contact.objects.filter(pk=old.pk).update(attributes={"plano": "ouro"},
                                             last_inbound_at=timezone.now() - timedelta(days=40))
    content = {"variables": {"1": "{name}", "2": "x"}}
    by_attribute = campaigns.plan(template_name="aviso", language="pt_BR", audience={"attributes": {"plano": "ouro"}},
                                  **content)
    assert by_attribute.recipients == 2
    by_contact = campaigns.plan(template_name="aviso", language="pt_BR",
                                audience={"attributes": {"plano": "ouro"}, "last_contact_days": 30}, **content)
    assert [contact.pk for contact, _reason in by_contact.rows] == [recent.pk]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"template_name": "nao_existe"}, "template.name"),
    ({"variables": {"1": "{name}"}}, "variables"),
    ({"variables": {"1": "{name}", "2": "x", "3": "y"}}, "variables"),
    ({"variables": {"1": "{idade}", "2": "x"}}, "variables.1"),
    ({"header": {}}, "header"),
    ({"header": {"link": "http://insecure.example/a.jpg"}}, "header"),
    ({"buttons": {}}, "buttons"),
    ({"audience": {"labels": ["nao-existe"]}}, "audience.labels"),
    ({"audience": {}}, "audience"),
])
def test_content_that_does_not_fit_the_template_is_refused_before_any_row(promo, kwargs, field):
    customers(1)
    arguments = {"template_name": "promo_semana", "language": "pt_BR", "audience": {"labels": ["clientes"]},
                 **PROMO_CONTENT, **kwargs}
    with pytest.raises(CampaignRefused) as refused:
        campaigns.plan(**arguments)
    assert refused.value.field == field
    assert not Campaign.objects.exists() and not Message.objects.exists()


def test_an_unapproved_template_is_refused(promo):
    Template.objects.filter(pk=promo.pk).update(status="PAUSED")
    with pytest.raises(CampaignRefused, match="promo_semana"):
        campaigns.plan(template_name="promo_semana", language="pt_BR", audience={"labels": ["clientes"]},
                       **PROMO_CONTENT)


def test_an_audience_with_no_one_to_send_to_is_refused(promo):
    customers(2, opted_out=True)
    plan = campaigns.plan(template_name="promo_semana", language="pt_BR", audience={"labels": ["clientes"]},
                          **PROMO_CONTENT)
    with pytest.raises(CampaignRefused) as refused:
        campaigns.create(name="x", plan=plan)
    assert refused.value.field == "audience" and "2" in refused.value.message


def test_someone_who_opts_out_after_creation_is_skipped_when_their_turn_comes(fake_graph, promo):
    keeps, leaves = customers(2)
    campaign = start(promo)
    Contact.objects.filter(pk=leaves.pk).update(opted_out=True)
    send_all()
    assert [body["to"] for body in fake_graph.sent()] == [f"+{keeps.wa_id}"]
    assert Recipient.objects.get(campaign=campaign, contact=leaves).skip_reason == "opted_out"


def test_conversations_go_first_and_the_campaign_fills_the_room_left(fake_graph, aviso, settings):
    settings.WHATSAPP_MESSAGES_PER_SECOND = 40  # a batch of 20
    customers(50)
    start(aviso, content={"variables": {"1": "{name}", "2": "x"}})
    talking = Contact.objects.create(wa_id="5521999990000", last_inbound_at=timezone.now())
    reply = sending.queue(phone_number=PhoneNumber.objects.default(), contact=talking,
                          message={"type": "text", "text": {"body": "Oi!"}}, source=Message.Source.BOT)
    outbox.drain()
    sent = fake_graph.sent()
    assert sent[0]["to"] == "+5521999990000"  # the reply first, in the same batch
    assert len(sent) <= outbox.batch_size()
    reply.refresh_from_db()
    assert reply.status == "sent"


def test_a_scheduled_campaign_waits_for_its_time(fake_graph, aviso):
    customers(2)
    later = timezone.now() + timedelta(hours=2)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}}, scheduled_at=later)
    assert campaign.status == Campaign.Status.SCHEDULED
    send_all()
    assert fake_graph.sent() == []
    with mock.patch.object(timezone, "now", return_value=later + timedelta(seconds=1)):
        campaign_sending.wake()
        send_all()
    assert len(fake_graph.sent()) == 2
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED and campaign.started_at is not None


def test_outside_its_daily_window_a_campaign_waits(fake_graph, aviso):
    customers(1)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}}, window=(time(8), time(20)))
    night = timezone.make_aware(datetime(2026, 12, 1, 22, 30))
    morning = timezone.make_aware(datetime(2026, 12, 2, 8, 0, 5))
    with mock.patch.object(timezone, "now", return_value=night):
        send_all()
        assert fake_graph.sent() == []
        assert campaign_sending.next_window(campaign, night) == timezone.make_aware(datetime(2026, 12, 2, 8, 0))
    with mock.patch.object(timezone, "now", return_value=morning):
        campaign_sending.wake()
        send_all()
    assert len(fake_graph.sent()) == 1


def test_an_overnight_window_spans_midnight(aviso):
    campaign = Campaign(window_start=time(20), window_end=time(2))
    assert campaign_sending.window_open(campaign, timezone.make_aware(datetime(2026, 12, 1, 23)))
    assert campaign_sending.window_open(campaign, timezone.make_aware(datetime(2026, 12, 2, 1, 59)))
    assert not campaign_sending.window_open(campaign, timezone.make_aware(datetime(2026, 12, 2, 12)))


def test_metas_messaging_limit_holds_back_what_would_pass_it(fake_graph, aviso):
    PhoneNumber.objects.default()
    PhoneNumber.objects.update(messaging_limit="TIER_50")
    customers(60)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}})
    send_all()
    assert len(fake_graph.sent()) == 50
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    # A day later the window has moved: the rest goes.
    with mock.patch.object(timezone, "now", return_value=timezone.now() + timedelta(hours=24, minutes=1)):
        campaign_sending.wake()
        send_all()
    assert len(fake_graph.sent()) == 60


def test_bulk_message_delay_spaces_a_campaigns_messages(fake_graph, aviso):
    customers(3)
    start(aviso, content={"variables": {"1": "{name}", "2": "x"}}, delay_ms=200)
    drain_for(3)
    sends = sorted(Message.objects.values_list("send_after", flat=True))
    assert len(sends) == 3 and len(fake_graph.sent()) == 3
    assert all((later - earlier).total_seconds() >= 0.2 for earlier, later in zip(sends, sends[1:], strict=False))


def test_pause_takes_back_unclaimed_messages_and_resume_sends_them(fake_graph, aviso):
    customers(3)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}}, delay_ms=10_000)
    outbox.drain()  # one sent, two queued for later
    assert len(fake_graph.sent()) == 1
    campaigns.pause(campaign.pk)
    assert Message.objects.filter(status="queued").count() == 0
    assert Recipient.objects.filter(campaign=campaign, state="pending").count() == 2
    with pytest.raises(campaigns.CampaignConflict):
        campaigns.pause(campaign.pk)
    campaigns.resume(campaign.pk)
    Campaign.objects.filter(pk=campaign.pk).update(delay_ms=0, next_send_at=None)
    campaign_sending.wake()
    send_all()
    assert len(fake_graph.sent()) == 3
    assert len({body["to"] for body in fake_graph.sent()}) == 3


def test_cancel_stops_everything_not_yet_sent(fake_graph, aviso):
    customers(3)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}}, delay_ms=10_000)
    outbox.drain()
    campaigns.cancel(campaign.pk)
    send_all()
    assert len(fake_graph.sent()) == 1
    assert Recipient.objects.filter(campaign=campaign, state="cancelled").count() == 2
    with pytest.raises(campaigns.CampaignConflict):
        campaigns.resume(campaign.pk)


def quality_webhook(event):
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "time": 1767225600, "changes": [{
        "field": "phone_number_quality_update",
        "value": {"display_phone_number": "5511900000000", "event": event, "current_limit": "TIER_2K"}}]}]}


def test_a_flagged_number_pauses_its_campaigns(client, aviso):
    PhoneNumber.objects.default()
    PhoneNumber.objects.update(display_phone_number="5511900000000")
    customers(2)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}})
    assert post_signed(client, quality_webhook("FLAGGED")).status_code == 200
    inbound.drain()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == ("paused", "quality")
    assert "FLAGGED" in campaign.pause_detail


def test_spam_refusals_past_the_threshold_pause_the_campaign(fake_graph, aviso, settings):
    settings.WHATSAPP_MESSAGES_PER_SECOND = 20  # batches of 10
    customers(30)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}})
    fake_graph.fail_next(131048, times=6)
    send_all()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == ("paused", "spam")
    assert Message.objects.filter(error_code=131048).count() >= campaigns.SPAM_MIN
    assert Recipient.objects.filter(campaign=campaign, state="pending").exists()  # the rest waits


def test_a_template_paused_at_meta_pauses_the_campaign(fake_graph, aviso):
    customers(5)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}})
    fake_graph.fail_next(132015)
    send_all()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == ("paused", "template")


def test_a_refused_token_holds_the_campaign_and_it_goes_on_with_a_new_one(fake_graph, aviso, settings):
    settings.WHATSAPP_MESSAGES_PER_SECOND = 20  # batches of 10
    customers(30)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}})
    fake_graph.fail_next(190, http_status=401, times=100)
    send_all()
    send_all()
    fake_graph.clear_scripts()
    assert Message.objects.filter(status="queued").count() >= 1  # waiting, not failed
    assert Recipient.objects.filter(campaign=campaign, state="pending").exists()
    settings.WHATSAPP_ACCESS_TOKEN = fake_graph.token  # same token: still paused for TOKEN_PAUSE
    with later_by(outbox.TOKEN_PAUSE + timedelta(seconds=1)):
        drain_for(30)
    assert Message.objects.filter(status="sent").count() == 30
    assert not Message.objects.filter(status="failed").exists()


def test_a_reply_marks_the_recipient_and_goes_to_the_campaigns_department(fake_graph, client, aviso):
    vendas = Department.objects.create(name="Vendas")
    (ana,) = customers(1)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}}, department=vendas)
    send_all()
    body = {"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "sandbox"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": ana.wa_id}],
        "messages": [{"from": ana.wa_id, "id": "wamid.reply1", "timestamp": str(int(timezone.now().timestamp())),
                      "type": "text", "text": {"body": "Quero!"}}]}}]}]}
    assert post_signed(client, body).status_code == 200
    inbound.drain()
    session = Session.objects.get(contact=ana)
    assert (session.campaign_id, session.status, session.department_id) == (campaign.pk, "waiting", vendas.pk)
    assert Recipient.objects.get(contact=ana).replied_at is not None


def test_a_reply_to_a_campaign_without_department_goes_to_the_bot(aviso):
    (ana,) = customers(1)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}})
    send_all()
    ana.refresh_from_db()
    message = Message.objects.create(phone_number=PhoneNumber.objects.default(), contact=ana, direction="in",
                                     source="customer", type="text", text="oi", status="received",
                                     timestamp=timezone.now())
    Contact.objects.filter(pk=ana.pk).update(last_inbound_at=timezone.now())
    message.contact.refresh_from_db()
    session = conversation.follow_up(message)
    assert (session.campaign_id, session.status) == (campaign.pk, "bot")
    assert Message.objects.filter(direction="out", source="bot").exists()  # the bot answered


def test_every_way_a_customer_opts_out_keeps_marketing_campaigns_away(fake_graph, client, promo, run_tasks):
    """The bot's *parar* (confirmed), the "Parar promoções" quick reply, Meta's user_preferences
    stop and Meta's 131050 on a campaign's own send: the next marketing campaign skips all four."""
    import json

    from chatbot.tests.helpers import load_payload
    from chatbot.whatsapp.webhook import customer_message

    parar, button, preference, refused, stays = customers(5)

    def say(contact, text, wamid):
        body = customer_message(phone_number_id="sandbox", wa_id=contact.wa_id, name="Cliente", wamid=wamid,
                                text=text)
        assert post_signed(client, body).status_code == 200
        run_tasks()

    say(parar, "parar", "wamid.P1")
    say(parar, "sim", "wamid.P2")
    document = load_payload("button")
    message = document["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update({"from": button.wa_id, "id": "wamid.B1", "timestamp": str(int(time_module.time())),
                    "button": {"payload": "STOP_PROMOTIONS", "text": "Parar promoções"}})
    document["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = button.wa_id
    assert post_signed(client, json.dumps(document).encode()).status_code == 200
    change = {"field": "user_preferences", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "sandbox"},
        "contacts": [{"profile": {"name": "Cliente"}, "wa_id": preference.wa_id}],
        "user_preferences": [{"wa_id": preference.wa_id, "detail": "User requested to stop marketing messages",
                              "category": "marketing_messages", "value": "stop", "timestamp": 1764500000}]}}
    assert post_signed(client, {"object": "whatsapp_business_account",
                                "entry": [{"id": "W", "changes": [change]}]}).status_code == 200
    run_tasks()
    first = start(promo, audience={"wa_ids": [refused.wa_id]}, name="Primeira")
    fake_graph.fail_next(131050)
    send_all()
    assert Message.objects.get(recipient__campaign=first).error_code == 131050

    plan = campaigns.plan(template_name="promo_semana", language="pt_BR", audience={"labels": ["clientes"]},
                          **PROMO_CONTENT)
    skipped = {contact.wa_id for contact, reason in plan.rows if reason == "opted_out"}
    assert skipped == {parar.wa_id, button.wa_id, preference.wa_id, refused.wa_id}
    assert plan.recipients == 1 and plan.first.pk == stays.pk


# --- What the review found --------------------------------------------------------------------


def test_a_template_edited_at_meta_pauses_the_campaign_and_conversations_still_go(fake_graph, aviso):
    customers(3)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}})
    Template.objects.filter(pk=aviso.pk).update(components=[{"type": "BODY", "text": "{{1}}, {{2}} e {{3}}"}])
    talking = Contact.objects.create(wa_id="5521999990000", last_inbound_at=timezone.now())
    reply = sending.queue(phone_number=PhoneNumber.objects.default(), contact=talking,
                          message={"type": "text", "text": {"body": "Oi!"}}, source=Message.Source.BOT)
    send_all()
    reply.refresh_from_db()
    campaign.refresh_from_db()
    assert reply.status == "sent"
    assert (campaign.status, campaign.pause_reason) == ("paused", "template")
    assert [body["to"] for body in fake_graph.sent()] == ["+5521999990000"]


def test_a_feed_that_fails_does_not_cost_the_conversations_messages(fake_graph, aviso):
    customers(1)
    start(aviso, content={"variables": {"1": "{name}", "2": "x"}})
    talking = Contact.objects.create(wa_id="5521999990000", last_inbound_at=timezone.now())
    reply = sending.queue(phone_number=PhoneNumber.objects.default(), contact=talking,
                          message={"type": "text", "text": {"body": "Oi!"}}, source=Message.Source.BOT)
    with mock.patch.object(campaign_sending, "queue_next", side_effect=RuntimeError("a bug")):
        outbox.drain()
    reply.refresh_from_db()
    assert reply.status == "sent"


def test_a_campaign_paused_meanwhile_queues_nothing(aviso):
    customers(2)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}})
    stale = Campaign.objects.get(pk=campaign.pk)  # read running, as feed read it
    campaigns.pause(campaign.pk)
    assert campaign_sending.queue_next(stale, 10, timezone.now()) == 0
    assert not Message.objects.exists()


def test_131049_is_metas_cap_per_user_not_a_reason_to_pause(fake_graph, aviso, settings):
    settings.WHATSAPP_MESSAGES_PER_SECOND = 20
    customers(30)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}})
    fake_graph.fail_next(131049, times=10)
    drain_for(20)
    campaign.refresh_from_db()
    assert campaign.status != "paused"


def test_a_campaign_finishes_when_its_last_message_went_even_after_its_window(fake_graph, aviso):
    customers(1)
    campaign = start(aviso, content={"variables": {"1": "{name}", "2": "x"}}, window=(time(8), time(20)))
    day = timezone.make_aware(datetime(2026, 12, 1, 19, 59, 50))
    with mock.patch.object(timezone, "now", return_value=day):
        send_all()
    with mock.patch.object(timezone, "now", return_value=day + timedelta(minutes=5)):  # 20:04: window closed
        campaign_sending.wake()
        send_all()
    campaign.refresh_from_db()
    assert campaign.status == "finished"


def test_a_live_number_never_checked_is_held_to_a_new_businesss_limit(fake_graph, settings):
    number = PhoneNumber.objects.default()
    assert campaign_sending.messaging_limit(number) == 250
    number.messaging_limit = "TIER_10K"
    assert campaign_sending.messaging_limit(number) == 10_000
    settings.WHATSAPP_ACCESS_TOKEN = ""
    number.messaging_limit = ""
    assert campaign_sending.messaging_limit(number) is None  # sandbox: nothing at Meta to limit


def test_a_scheduled_marketing_template_is_not_sent_to_a_customer_who_opted_out_since(fake_graph, promo):
    (ana,) = customers(1)
    message = sending.queue(phone_number=PhoneNumber.objects.default(), contact=ana, source=Message.Source.OPERATOR,
                            message={"type": "template", "template": {"name": "promo_semana",
                                                                      "language": {"code": "pt_BR"}}})
    Message.objects.filter(pk=message.pk).update(send_after=timezone.now() + timedelta(days=3))
    Contact.objects.filter(pk=ana.pk).update(opted_out=True)
    with later_by(timedelta(days=3, seconds=1)):
        send_all()
    message.refresh_from_db()
    assert fake_graph.sent() == []
    assert (message.status, message.error_title) == ("failed", sending.CONTACT_OPTED_OUT)
    assert failures.explanation(message).startswith("Não enviada: o cliente pediu para não receber mensagens")


def test_nothing_is_sent_to_a_customer_blocked_after_it_was_queued(fake_graph):
    contact = Contact.objects.create(wa_id="5511987654321", last_inbound_at=timezone.now())
    message = sending.queue(phone_number=PhoneNumber.objects.default(), contact=contact, source=Message.Source.API,
                            message={"type": "text", "text": {"body": "Oi"}})
    Contact.objects.filter(pk=contact.pk).update(blocked=True)
    send_all()
    message.refresh_from_db()
    assert fake_graph.sent() == [] and message.error_title == sending.CONTACT_BLOCKED

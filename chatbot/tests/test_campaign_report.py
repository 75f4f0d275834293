"""A campaign's report (chatbot/campaign_report.py): its figures from the messages' statuses, kept
as a snapshot the worker refreshes, and the per-recipient rows."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chatbot import campaign_report, campaigns, outbox, statuses
from chatbot.models import BotSettings, Campaign, Contact, Label, Message, Recipient, Template

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(fake_graph):
    Template.objects.create(name="promo", language="pt_BR", category="MARKETING", status="APPROVED",
                            components=[{"type": "BODY", "text": "Oi {{1}}!"}])
    label = Label.objects.create(name="vip")
    made = [Contact.objects.create(wa_id=f"55119{index:08d}", name=f"Cliente {index}") for index in range(5)]
    label.contacts.add(*made)
    Contact.objects.filter(pk=made[4].pk).update(opted_out=True)
    plan = campaigns.plan(template_name="promo", language="pt_BR", audience={"labels": ["vip"]},
                          variables={"1": "{first_name|cliente}"})
    created = campaigns.create(name="VIP", plan=plan)
    fake_graph.fail_next(131026)  # the first one is not on WhatsApp
    while outbox.drain():
        pass
    created.refresh_from_db()
    assert created.status == "finished"
    return created


def move(contact_index, status, pricing=None):
    message = Message.objects.get(contact__wa_id=f"55119{contact_index:08d}")
    statuses.move_status(message.wamid, status, moment=timezone.now(), pricing=pricing)


def test_the_figures_follow_the_messages_statuses(campaign):
    move(1, "delivered", {"category": "marketing"})
    move(2, "read", {"category": "marketing"})
    move(3, "delivered", {})
    Recipient.objects.filter(contact__wa_id="5511900000002").update(replied_at=timezone.now())
    Contact.objects.filter(wa_id="5511900000003").update(opted_out=True, opted_out_at=timezone.now() + timedelta(1))
    figures = campaign_report.refresh(campaign)
    assert figures["counts"] == {"queued": 0, "sent": 3, "delivered": 3, "read": 1, "failed": 1, "replied": 1,
                                 "skipped": 1, "cancelled": 0, "opted_out": 1}
    assert [(failure.code, failure.count) for failure in campaign_report.failures(campaign)] == [(131026, 1)]
    assert "WhatsApp" in campaign_report.failures(campaign)[0].explanation
    # Three delivered: two Meta called marketing, one without a category costs as the template's.
    BotSettings.objects.update_or_create(pk=1, defaults={"price_marketing": Decimal("0.50")})
    (cost,) = campaign_report.costs(campaign)
    assert (cost.category, cost.count, cost.total) == ("marketing", 3, Decimal("1.50"))
    assert sum(number for _at, number in campaign_report.timeline(campaign)) == 3
    assert campaign_report.progress(campaign, figures["counts"]) == 100


def test_a_stale_snapshot_asks_the_worker_once(campaign, django_capture_on_commit_callbacks):
    campaign_report.refresh(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(started_at=timezone.now() - timedelta(minutes=20),
                                                   finished_at=timezone.now() - timedelta(minutes=10),
                                                   figures_at=timezone.now() - timedelta(minutes=5))
    campaign.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign_report.counts(campaign)
        campaign_report.counts(Campaign.objects.get(pk=campaign.pk))  # a second page meanwhile
    assert len(callbacks) == 1


def test_figures_counted_before_the_campaign_ended_are_counted_again_at_once(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(figures={"counts": {"sent": 0}},
                                                   figures_at=campaign.finished_at - timedelta(seconds=1))
    campaign.refresh_from_db()
    assert campaign_report.counts(campaign)["sent"] == 3


def test_a_finished_campaign_stays_live_for_an_hour(campaign):
    assert campaign_report.live(campaign)
    assert not campaign_report.live(campaign, now=campaign.finished_at + campaign_report.SETTLING)


def test_the_first_look_counts_at_once(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(figures={}, figures_at=None)
    campaign.refresh_from_db()
    assert campaign_report.counts(campaign)["sent"] == 3


def test_recipient_rows_say_what_happened_to_each(campaign):
    rows = {row[0]: row for row in campaign_report.recipient_rows(campaign)}
    assert rows["5511900000000"][2:4] == ["failed", 131026]
    assert rows["5511900000001"][2] == "sent" and rows["5511900000001"][4]  # sent_at
    assert rows["5511900000004"][2] == "skipped:opted_out"
    assert campaign_report.CSV_HEADER == ["wa_id", "name", "status", "error_code", "sent_at", "delivered_at",
                                          "read_at", "replied_at"]

"""The bot's configuration, edited by the owner (chatbot/bot.py reads a snapshot of it), and the
operators' canned replies."""

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from .contacts import Department


class BotSettings(models.Model):
    """The bot's texts and timings: one row, created with pt-BR defaults on first use.

    Texts may use {name} (the customer's profile name), {department}, {position} and {hours}.
    """

    greeting = models.TextField(_("greeting"), default="Olá, {name}! 👋 Bem-vindo(a) ao nosso atendimento.")
    menu_text = models.TextField(_("menu text"), default="Como podemos ajudar? Escolha uma opção:")
    menu_button = models.CharField(_("menu button (lists)"), max_length=20, default="Ver opções")
    human_option = models.CharField(_("'talk to a person' option"), max_length=20, default="Falar com atendente")
    fallback_text = models.TextField(
        _("didn't understand"),
        default="Desculpe, não entendi. 🤔 Digite *menu* para ver as opções ou *atendente* para falar com uma pessoa.",
    )
    fallback_limit = models.PositiveSmallIntegerField(
        _("misunderstandings before offering a person"), default=2
    )
    handoff_text = models.TextField(
        _("handoff message"),
        default="Certo! Você está na fila de *{department}* (posição {position}). Um atendente vai falar com "
        "você em breve.",
    )
    transfer_text = models.TextField(
        _("message on a transfer to another department"), blank=True,
        default="Sua conversa foi transferida para *{department}*. Um atendente de lá vai continuar com você.",
    )
    return_to_bot_text = models.TextField(
        _("message when the conversation goes back to the bot"), blank=True,
        default="Você voltou ao atendimento automático. Digite *menu* para ver as opções ou *atendente* para "
        "falar com uma pessoa.",
    )
    handoff_timeout_minutes = models.PositiveIntegerField(_("minutes before the waiting message"), default=15)
    handoff_timeout_text = models.TextField(
        _("waiting message"),
        blank=True,
        default="Nossa equipe está ocupada no momento, mas sua mensagem está guardada: retornaremos assim que "
        "possível. Obrigado pela paciência! 🙏",
    )
    out_of_hours_text = models.TextField(
        _("out-of-hours message"),
        default="Estamos fora do horário de atendimento ({hours}). Deixe sua mensagem que responderemos assim "
        "que abrirmos. Enquanto isso, digite *menu* para ver as opções.",
    )
    opt_out_confirm_text = models.TextField(
        _("opt-out confirmation question"),
        default="Quer deixar de receber nossas mensagens promocionais? Responda *SIM* para confirmar.",
    )
    opt_out_done_text = models.TextField(
        _("opt-out done"),
        default="Pronto, você não receberá mais mensagens promocionais. Se mudar de ideia, digite *voltar*.",
    )
    opt_in_text = models.TextField(_("opt-in done"), default="Que bom! Você voltará a receber nossas novidades.")
    inactivity_hours = models.PositiveIntegerField(_("close sessions after hours without messages"), default=24)
    closing_text = models.TextField(
        _("closing message"),
        blank=True,
        default="Encerramos este atendimento. Se precisar de algo, é só escrever! 😊",
    )
    spam_cooldown_minutes = models.PositiveIntegerField(_("spam guard: minutes of silence"), default=10)
    followup_template = models.CharField(
        _("template when the 24-hour window is closed"),
        max_length=512,
        blank=True,
        help_text=_("Name of an approved template (no parameters), sent instead of the waiting message."),
    )
    followup_template_language = models.CharField(_("template language"), max_length=16, default="pt_BR")
    csat_enabled = models.BooleanField(_("ask customers to rate the service"), default=True)
    csat_question = models.TextField(
        _("survey question"), default="Como você avalia o nosso atendimento? Escolha uma nota de 1 a 5.")
    csat_button = models.CharField(_("survey list button"), max_length=20, default="Avaliar")
    csat_comment_question = models.TextField(
        _("question after a low score (1 or 2)"), blank=True,
        default="Poxa, sentimos muito. 😕 Conte pra gente o que podemos melhorar (ou digite *pular*).")
    csat_thanks = models.TextField(_("thanks for the answer"), blank=True, default="Obrigado pela avaliação! 💚")
    csat_template = models.CharField(
        _("survey template when the 24-hour window is closed"), max_length=512, blank=True,
        help_text=_("Name of an approved template asking for the rating; without one, no survey outside the "
                    "window."))
    csat_template_language = models.CharField(_("survey template language"), max_length=16, default="pt_BR")
    campaigns_require_opt_in = models.BooleanField(
        _("campaigns only to contacts with a recorded opt-in"), default=False,
        help_text=_("Contacts without an opt-in (an import's opt-in columns) are skipped by every campaign."))
    # What Meta charges per delivered template, by pricing category: the campaigns' cost estimate.
    # Defaults: Meta's Brazil rates of 2025 in US$ at R$ 5,50.
    price_marketing = models.DecimalField(_("price of a marketing message (R$)"), max_digits=8, decimal_places=4,
                                          default=Decimal("0.3438"))
    price_utility = models.DecimalField(_("price of a utility message (R$)"), max_digits=8, decimal_places=4,
                                        default=Decimal("0.0374"))
    price_authentication = models.DecimalField(_("price of an authentication message (R$)"), max_digits=8,
                                               decimal_places=4, default=Decimal("0.0374"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("bot settings")
        verbose_name_plural = _("bot settings")

    def __str__(self):
        return str(_("Bot settings"))

    @classmethod
    def load(cls):
        return cls.objects.get_or_create(pk=1)[0]


class BusinessHours(models.Model):
    """Opening hours for one weekday (in TIME_ZONE); no rows at all means always open."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    class Meta:
        ordering = ["weekday", "opens"]
        verbose_name = _("business hours")
        verbose_name_plural = _("business hours")
        constraints = [
            models.CheckConstraint(condition=Q(closes__gt=F("opens")), name="business_hours_closes_after_opens"),
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


class Holiday(models.Model):
    date = models.DateField(_("date"), unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["date"]
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")

    def __str__(self):
        return f"{self.date:%d/%m/%Y} {self.name}"


class Flow(models.Model):
    """A guided conversation: steps that ask, offer options and lead to other steps or actions."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    menu_title = models.CharField(_("title in the main menu"), max_length=24, blank=True,
                                  help_text=_("Leave empty to keep it out of the main menu."))
    first_step = models.ForeignKey("FlowStep", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                   verbose_name=_("first step"))
    position = models.PositiveSmallIntegerField(_("position in menus"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("flow")
        verbose_name_plural = _("flows")

    def __str__(self):
        return self.name


class Action(models.TextChoices):
    """What an option or a keyword rule does once chosen."""

    REPLY = "reply", _("reply with a text")
    STEP = "step", _("go to a step")
    FLOW = "flow", _("start a flow")
    MENU = "menu", _("show the main menu")
    HANDOFF = "handoff", _("hand off to a department")
    CLOSE = "close", _("close the session")


class FlowStep(models.Model):
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="steps", verbose_name=_("flow"))
    name = models.CharField(_("name"), max_length=100)
    text = models.TextField(_("text"))
    save_as = models.SlugField(_("save the answer as"), max_length=50, blank=True,
                               help_text=_("A question: the customer's answer is kept in the session under this name."))
    next_step = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                  verbose_name=_("next step (after an answer)"))
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["flow", "position", "pk"]
        verbose_name = _("flow step")
        verbose_name_plural = _("flow steps")

    def __str__(self):
        return f"{self.flow} › {self.name}"


class FlowOption(models.Model):
    """A button (up to 3 per step) or list row (up to 10) under a step."""

    step = models.ForeignKey(FlowStep, on_delete=models.CASCADE, related_name="options", verbose_name=_("step"))
    title = models.CharField(_("title"), max_length=24)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices, default=Action.STEP)
    next_step = models.ForeignKey(FlowStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                  verbose_name=_("step"))
    department = models.ForeignKey(Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                   verbose_name=_("department"))
    reply_text = models.TextField(_("reply"), blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["step", "position", "pk"]
        verbose_name = _("option")
        verbose_name_plural = _("options")

    def __str__(self):
        return self.title


class KeywordRule(models.Model):
    """When a customer's message matches, the bot does the action (first matching rule wins)."""

    class Match(models.TextChoices):
        EXACT = "exact", _("is exactly")
        CONTAINS = "contains", _("contains")
        REGEX = "regex", _("matches the regular expression")

    match = models.CharField(_("match"), max_length=8, choices=Match.choices, default=Match.CONTAINS)
    pattern = models.CharField(_("words"), max_length=255,
                               help_text=_("Case and accents are ignored. Separate alternatives with commas."))
    action = models.CharField(_("action"), max_length=8, choices=Action.choices, default=Action.REPLY)
    reply_text = models.TextField(_("reply"), blank=True)
    department = models.ForeignKey(Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                   verbose_name=_("department"))
    flow = models.ForeignKey(Flow, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                             verbose_name=_("flow"))
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("keyword rule")
        verbose_name_plural = _("keyword rules")

    def __str__(self):
        return f"{self.get_match_display()} {self.pattern}"

    def clean(self):
        if self.match == self.Match.REGEX:
            try:
                re.compile(self.pattern)
            except re.error as error:
                message = _("Not a valid regular expression: %(error)s") % {"error": error}
                raise ValidationError({"pattern": message}) from None


class CannedReply(models.Model):
    """A ready answer operators insert into the reply box (`{name}` becomes the customer's name)."""

    title = models.CharField(_("title"), max_length=60)
    text = models.TextField(_("text"), max_length=4096)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "title"]
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")

    def __str__(self):
        return self.title

"""The Django admin: every table of the app, for superusers and for staff with model permissions;
the internal ones (queues, limits, counters, raw events) for superusers only. The owner's everyday
settings are also in the dashboard (dashboard/business.py)."""

from django import forms
from django.apps import apps
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django_tasks_db.admin import DBTaskResultAdmin  # registers DBTaskResult, replaced below
from django_tasks_db.models import DBTaskResult

from .dashboard.business_forms import BOT_GROUPS
from .models import (
    AccountEvent,
    ApiToken,
    BotSettings,
    BusinessHours,
    Campaign,
    CannedReply,
    Contact,
    ContactAttribute,
    DailyStats,
    Department,
    EventDelivery,
    Flow,
    FlowOption,
    FlowStep,
    Holiday,
    IdempotencyKey,
    KeywordRule,
    Label,
    Message,
    Note,
    OnlineHour,
    OperatorProfile,
    PendingStatus,
    PhoneNumber,
    RateLimit,
    Recipient,
    ReportDay,
    Scope,
    Session,
    Template,
    WebhookEndpoint,
    WebhookEvent,
    WorkerBeat,
)


class SuperuserOnly:
    """For internal tables: superusers only, even for staff granted the model's permissions (the
    mixin only narrows: a ModelAdmin's own refusals, such as no add, stay)."""

    def has_module_permission(self, request):
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = ["phone_number_id", "display_phone_number", "verified_name", "quality_rating", "messaging_limit"]
    search_fields = ["phone_number_id", "display_phone_number", "verified_name"]
    list_filter = ["quality_rating"]


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "position", "is_active", "restricted"]
    list_editable = ["position", "is_active", "restricted"]
    search_fields = ["name"]
    list_filter = ["is_active", "restricted"]
    filter_horizontal = ["operators"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["__str__", "wa_id", "user_id", "last_inbound_at", "opted_out", "blocked"]
    search_fields = ["wa_id", "user_id", "name", "username"]
    list_filter = ["opted_out", "blocked"]
    date_hierarchy = "last_seen_at"


class NoteInline(admin.TabularInline):
    model = Note
    extra = 0
    fields = ["text", "author", "created_at"]
    readonly_fields = ["author", "created_at"]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    inlines = [NoteInline]
    list_display = ["id", "contact", "phone_number", "status", "department", "assigned_to", "last_message_at"]
    search_fields = ["contact__wa_id", "contact__name"]
    list_filter = ["status", "department", "phone_number"]
    list_select_related = ["contact", "phone_number", "department", "assigned_to"]
    raw_id_fields = ["contact"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "timestamp", "direction", "type", "contact", "status", "error_code", "wamid"]
    search_fields = ["wamid", "contact__wa_id", "contact__name"]
    list_filter = ["direction", "status", "type", "source", "phone_number"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact", "session", "sent_by", "api_token"]
    date_hierarchy = "timestamp"


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "language", "category", "status", "synced_at"]
    search_fields = ["name", "template_id"]
    list_filter = ["status", "category", "language"]


class ReadOnly:
    """Rows changed only through their service (campaigns: the dashboard, the API, the command)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Campaign)
class CampaignAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["name", "status", "template_name", "recipients", "scheduled_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["name", "template_name"]


@admin.register(Recipient)
class RecipientAdmin(ReadOnly, SuperuserOnly, admin.ModelAdmin):
    list_display = ["campaign", "contact", "state", "skip_reason", "queued_at", "replied_at"]
    list_filter = ["state", "skip_reason"]
    list_select_related = ["campaign", "contact"]
    raw_id_fields = ["campaign", "contact", "message"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnly, admin.ModelAdmin):
    """Managed in the dashboard's settings (and the command), where the URL is checked and the
    secret shown; here only seen, without the secret."""

    list_display = ["url", "description", "active", "failing_since", "disabled_at"]
    exclude = ["secret"]

    def has_delete_permission(self, request, obj=None):
        return False  # removed from the settings page, which keeps the row (WebhookEndpoint.removed_at)


@admin.register(EventDelivery)
class EventDeliveryAdmin(ReadOnly, SuperuserOnly, admin.ModelAdmin):
    list_display = ["event_id", "type", "endpoint", "status", "attempts", "response_status", "created_at"]
    list_filter = ["status", "type"]
    list_select_related = ["endpoint"]
    raw_id_fields = ["endpoint", "contact"]
    date_hierarchy = "created_at"


@admin.register(WebhookEvent)
class WebhookEventAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["id", "received_at", "result", "attempts", "summary"]
    list_filter = ["result"]
    search_fields = ["body"]
    date_hierarchy = "received_at"
    readonly_fields = ["body", "received_at", "processed_at", "summary", "error", "attempts"]


@admin.register(PendingStatus)
class PendingStatusAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["wamid", "status", "timestamp", "received_at"]
    search_fields = ["wamid"]
    list_filter = ["status"]


@admin.register(AccountEvent)
class AccountEventAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["created_at", "field", "event", "waba_id", "phone_number"]
    search_fields = ["event", "waba_id"]
    list_filter = ["field", "event"]
    date_hierarchy = "created_at"


@admin.register(RateLimit)
class RateLimitAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["key", "booked_until"]
    search_fields = ["key"]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["key", "token", "status_code", "created_at"]
    search_fields = ["key"]
    list_filter = ["status_code"]
    readonly_fields = ["token", "key", "request_hash", "status_code", "response", "created_at"]


@admin.register(WorkerBeat)
class WorkerBeatAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["hostname", "pid", "worker_id", "started_at", "last_seen"]
    search_fields = ["hostname", "worker_id"]
    readonly_fields = ["worker_id", "hostname", "pid", "started_at", "last_seen"]


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(label=_("scopes"), choices=Scope.choices, required=False,
                                       widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiToken
        fields = ["name", "scopes", "revoked_at"]

    def clean_scopes(self):
        return sorted(self.cleaned_data["scopes"])


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["name", "prefix"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        # The plaintext is shown once, by `manage.py whatsapp_chatbot create-api-token NAME`.
        return False

    @admin.action(description=_("Revoke selected tokens"))
    def revoke(self, request, queryset):
        from django.utils import timezone

        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


# --- The bot's configuration ---


@admin.register(BotSettings)
class BotSettingsAdmin(admin.ModelAdmin):
    fieldsets = [(title, {"fields": names}) for title, names in BOT_GROUPS]

    def has_add_permission(self, request):
        return not BotSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # One row: go straight to it.
        from django.shortcuts import redirect

        return redirect("admin:chatbot_botsettings_change", BotSettings.load().pk)


@admin.register(BusinessHours)
class BusinessHoursAdmin(admin.ModelAdmin):
    list_display = ["weekday", "opens", "closes"]
    list_filter = ["weekday"]


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    list_display = ["date", "name"]
    search_fields = ["name"]
    date_hierarchy = "date"


class FlowStepInline(admin.StackedInline):
    model = FlowStep
    fk_name = "flow"
    extra = 0
    fields = ["name", "text", "save_as", "next_step", "position"]
    show_change_link = True


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    list_display = ["name", "menu_title", "first_step", "position", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    inlines = [FlowStepInline]


class FlowOptionInline(admin.TabularInline):
    model = FlowOption
    fk_name = "step"
    extra = 1
    fields = ["title", "action", "next_step", "department", "reply_text", "position"]


@admin.register(FlowStep)
class FlowStepAdmin(admin.ModelAdmin):
    list_display = ["__str__", "save_as", "next_step"]
    list_filter = ["flow"]
    search_fields = ["name", "text"]
    inlines = [FlowOptionInline]


@admin.register(FlowOption)
class FlowOptionAdmin(admin.ModelAdmin):
    list_display = ["title", "step", "action", "next_step", "department"]
    list_filter = ["action"]
    search_fields = ["title", "reply_text"]


@admin.register(KeywordRule)
class KeywordRuleAdmin(admin.ModelAdmin):
    list_display = ["pattern", "match", "action", "department", "flow", "position", "is_active"]
    list_filter = ["match", "action", "is_active"]
    search_fields = ["pattern", "reply_text"]


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ["title", "position"]
    list_editable = ["position"]
    search_fields = ["title", "text"]


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["session", "author", "created_at"]
    search_fields = ["text"]
    raw_id_fields = ["session"]
    list_select_related = ["session__contact", "author"]


@admin.register(DailyStats)
class DailyStatsAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["day", "received", "sent", "counted_at"]
    date_hierarchy = "day"


@admin.register(ReportDay)
class ReportDayAdmin(SuperuserOnly, admin.ModelAdmin):
    """Counted by the reports (chatbot/reporting.py); deleting rows only makes them count again."""

    list_display = ["day", "span", "department", "operator", "label", "counted_at"]
    list_filter = ["span"]
    date_hierarchy = "day"


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "color", "position"]
    list_editable = ["color", "position"]
    search_fields = ["name"]


@admin.register(ContactAttribute)
class ContactAttributeAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "position"]
    list_editable = ["position"]
    search_fields = ["name", "key"]


@admin.register(OperatorProfile)
class OperatorProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "presence", "max_conversations", "sound", "notifications", "seen_at"]
    search_fields = ["user__username", "user__first_name"]
    readonly_fields = ["seen_at", "viewing", "viewing_at", "presence", "active_at", "last_assigned_at"]


@admin.register(OnlineHour)
class OnlineHourAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["hour", "user"]
    date_hierarchy = "hour"


# --- django_tasks_db's task results: internal, and named in English only by the package ---

admin.site.unregister(DBTaskResult)


@admin.register(DBTaskResult)
class TaskResultAdmin(SuperuserOnly, DBTaskResultAdmin):
    pass


# Our own msgids, so that our catalog translates the names the admin shows (the package's app name
# is a plain string). Only the live names change: migrations read the model's declared Meta.
apps.get_app_config("django_tasks_database").verbose_name = _("Background tasks")
DBTaskResult._meta.verbose_name = _("background task")
DBTaskResult._meta.verbose_name_plural = _("background tasks")

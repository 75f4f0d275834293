"""Every URL of the product under /chatbot/: Meta's webhook and the health check (`views`), the
integrators' API (`api`; its campaigns in `api_campaigns`), and the operators' dashboard
(`dashboard.inbox` for the conversations, `dashboard.campaigns` for the campaigns,
`dashboard.reports` for the reports, `dashboard.business` for the business's settings,
`dashboard.integrations` for the event webhooks among them, `dashboard.views` for the rest)."""

from django.urls import path

from . import api, api_campaigns, views
from .dashboard import business, inbox, integrations, reports
from .dashboard import campaigns as campaign_pages
from .dashboard import views as dashboard

app_name = "chatbot"

urlpatterns = [
    path("webhook/", views.whatsapp_webhook, name="webhook"),
    path("health/", views.health, name="health"),
    path("send/", api.send_message, name="send"),
    path("api/messages/<int:message_id>/", api.message_detail, name="api-message"),
    path("api/contacts/<str:wa_id>/", api.contact_detail, name="api-contact"),
    path("api/schema/", api.schema, name="api-schema"),
    path("media/", api.upload_media, name="media-upload"),
    # The campaigns API; design.md writes the moves without a trailing slash, both forms answer.
    path("api/campaigns/", api_campaigns.campaign_collection, name="api-campaigns"),
    path("api/campaigns/<int:campaign_id>/", api_campaigns.campaign_detail, name="api-campaign"),
    path("api/campaigns/<int:campaign_id>/recipients.csv", api_campaigns.campaign_recipients,
         name="api-campaign-recipients"),
    path("api/campaigns/<int:campaign_id>/<str:move>", api_campaigns.campaign_move, name="api-campaign-move"),
    path("api/campaigns/<int:campaign_id>/<str:move>/", api_campaigns.campaign_move),
    path("media/<int:message_id>/", dashboard.media_file, name="media-file"),
    # The operators' dashboard (login required): the inbox, then the other pages.
    path("dashboard/", dashboard.overview, name="dashboard"),
    path("dashboard/pulse/", inbox.pulse, name="dashboard-pulse"),
    path("dashboard/preferences/", dashboard.preferences, name="dashboard-preferences"),
    path("dashboard/presence/", dashboard.presence_choice, name="dashboard-presence"),
    path("dashboard/conversations/", inbox.conversation_list, name="dashboard-conversations"),
    path("dashboard/conversations/next/", inbox.take_next, name="dashboard-take-next"),
    path("dashboard/conversations/bulk/", inbox.bulk, name="dashboard-bulk"),
    path("dashboard/conversations/<int:session_id>/", inbox.conversation_detail, name="dashboard-conversation"),
    path("dashboard/conversations/<int:session_id>/updates/", inbox.conversation_updates,
         name="dashboard-conversation-updates"),
    path("dashboard/conversations/<int:session_id>/reply/", inbox.conversation_reply,
         name="dashboard-conversation-reply"),
    path("dashboard/conversations/<int:session_id>/template/", inbox.conversation_template,
         name="dashboard-conversation-template"),
    path("dashboard/conversations/<int:session_id>/action/", inbox.conversation_action,
         name="dashboard-conversation-action"),
    path("dashboard/conversations/<int:session_id>/note/", inbox.conversation_note,
         name="dashboard-conversation-note"),
    path("dashboard/conversations/<int:session_id>/labels/", inbox.conversation_labels,
         name="dashboard-conversation-labels"),
    path("dashboard/messages/<int:message_id>/media-retry/", inbox.media_retry, name="dashboard-media-retry"),
    # Messages scheduled in a conversation, and cancelling one.
    path("dashboard/conversations/<int:session_id>/schedule/", inbox.conversation_schedule,
         name="dashboard-conversation-schedule"),
    path("dashboard/scheduled/<int:message_id>/cancel/", inbox.scheduled_cancel, name="dashboard-scheduled-cancel"),
    path("dashboard/contacts/", dashboard.contact_list, name="dashboard-contacts"),
    path("dashboard/contacts/<int:contact_id>/", dashboard.contact_detail, name="dashboard-contact"),
    path("dashboard/contacts/<int:contact_id>/update/", dashboard.contact_update, name="dashboard-contact-update"),
    path("dashboard/contacts/<int:contact_id>/start/", dashboard.contact_start, name="dashboard-contact-start"),
    path("dashboard/contacts/<int:contact_id>/attributes/", dashboard.contact_attributes,
         name="dashboard-contact-attributes"),
    path("dashboard/contacts/<int:contact_id>/labels/", dashboard.contact_labels, name="dashboard-contact-labels"),
    path("dashboard/contacts/<int:contact_id>/export/", dashboard.contact_export, name="dashboard-contact-export"),
    path("dashboard/contacts/<int:contact_id>/anonymize/", dashboard.contact_anonymize,
         name="dashboard-contact-anonymize"),
    # The reports (CSV with ?format=csv), for every operator.
    path("dashboard/reports/", reports.report_page, name="dashboard-reports"),
    # Campaigns (dashboard/campaigns.py): every operator reads them, administrators create and stop them.
    path("dashboard/campaigns/", campaign_pages.campaign_list, name="dashboard-campaigns"),
    path("dashboard/campaigns/new/", campaign_pages.campaign_new, name="dashboard-campaign-new"),
    path("dashboard/campaigns/<int:campaign_id>/", campaign_pages.campaign_page, name="dashboard-campaign"),
    path("dashboard/campaigns/<int:campaign_id>/live/", campaign_pages.campaign_live, name="dashboard-campaign-live"),
    path("dashboard/campaigns/<int:campaign_id>/recipients.csv", campaign_pages.campaign_csv,
         name="dashboard-campaign-csv"),
    path("dashboard/campaigns/<int:campaign_id>/<str:action>/", campaign_pages.campaign_action,
         name="dashboard-campaign-action"),
    path("dashboard/templates/", dashboard.template_list, name="dashboard-templates"),
    path("dashboard/templates/sync/", dashboard.template_sync, name="dashboard-templates-sync"),
    path("dashboard/webhooks/", dashboard.webhook_list, name="dashboard-webhooks"),
    path("dashboard/webhooks/<int:event_id>/", dashboard.webhook_detail, name="dashboard-webhook"),
    path("dashboard/webhooks/<int:event_id>/reprocess/", dashboard.webhook_reprocess,
         name="dashboard-webhook-reprocess"),
]

# The business's settings, for administrators (dashboard/business.py). "bot", "operators" and
# "event-webhooks" come before the generic <kind> paths, which answer 404 for any other name.
urlpatterns += [
    path("dashboard/settings/", business.index, name="dashboard-settings"),
    path("dashboard/settings/bot/", business.bot_texts, name="dashboard-settings-bot"),
    path("dashboard/settings/operators/", business.operator_list, name="dashboard-settings-operators"),
    path("dashboard/settings/operators/new/", business.operator_new, name="dashboard-settings-operator-new"),
    path("dashboard/settings/operators/<int:user_id>/", business.operator_edit, name="dashboard-settings-operator"),
    # The event webhooks (dashboard/integrations.py); "edit" and "delete" before the actions' <slug>.
    path("dashboard/settings/event-webhooks/", integrations.endpoint_list, name="dashboard-settings-endpoints"),
    path("dashboard/settings/event-webhooks/new/", integrations.endpoint_new, name="dashboard-settings-endpoint-new"),
    path("dashboard/settings/event-webhooks/<int:endpoint_id>/", integrations.endpoint_page,
         name="dashboard-settings-endpoint"),
    path("dashboard/settings/event-webhooks/<int:endpoint_id>/edit/", integrations.endpoint_edit,
         name="dashboard-settings-endpoint-edit"),
    path("dashboard/settings/event-webhooks/<int:endpoint_id>/delete/", integrations.endpoint_delete,
         name="dashboard-settings-endpoint-delete"),
    path("dashboard/settings/event-webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/replay/",
         integrations.delivery_replay, name="dashboard-settings-delivery-replay"),
    path("dashboard/settings/event-webhooks/<int:endpoint_id>/<slug:action>/", integrations.endpoint_action,
         name="dashboard-settings-endpoint-action"),
    path("dashboard/settings/<slug:kind>/", business.row_list, name="dashboard-settings-list"),
    path("dashboard/settings/<slug:kind>/new/", business.row_edit, name="dashboard-settings-new"),
    path("dashboard/settings/<slug:kind>/<int:pk>/", business.row_edit, name="dashboard-settings-edit"),
    path("dashboard/settings/<slug:kind>/<int:pk>/delete/", business.row_delete, name="dashboard-settings-delete"),
]

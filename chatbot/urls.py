"""Every URL of the product under /chatbot/: Meta's webhook and the health check (`views`), the
integrators' API (`api`), and the operators' dashboard (`dashboard.views`)."""

from django.urls import path

from . import api, views
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
    path("media/<int:message_id>/", dashboard.media_file, name="media-file"),
    # The operators' dashboard (login required).
    path("dashboard/", dashboard.overview, name="dashboard"),
    path("dashboard/conversations/", dashboard.conversation_list, name="dashboard-conversations"),
    path("dashboard/conversations/<int:session_id>/", dashboard.conversation_detail,
         name="dashboard-conversation"),
    path("dashboard/conversations/<int:session_id>/updates/", dashboard.conversation_updates,
         name="dashboard-conversation-updates"),
    path("dashboard/conversations/<int:session_id>/reply/", dashboard.conversation_reply,
         name="dashboard-conversation-reply"),
    path("dashboard/conversations/<int:session_id>/template/", dashboard.conversation_template,
         name="dashboard-conversation-template"),
    path("dashboard/conversations/<int:session_id>/action/", dashboard.conversation_action,
         name="dashboard-conversation-action"),
    path("dashboard/conversations/<int:session_id>/note/", dashboard.conversation_note,
         name="dashboard-conversation-note"),
    path("dashboard/messages/<int:message_id>/media-retry/", dashboard.media_retry, name="dashboard-media-retry"),
    path("dashboard/contacts/", dashboard.contact_list, name="dashboard-contacts"),
    path("dashboard/contacts/<int:contact_id>/", dashboard.contact_detail, name="dashboard-contact"),
    path("dashboard/contacts/<int:contact_id>/update/", dashboard.contact_update, name="dashboard-contact-update"),
    path("dashboard/contacts/<int:contact_id>/export/", dashboard.contact_export, name="dashboard-contact-export"),
    path("dashboard/contacts/<int:contact_id>/anonymize/", dashboard.contact_anonymize,
         name="dashboard-contact-anonymize"),
    path("dashboard/templates/", dashboard.template_list, name="dashboard-templates"),
    path("dashboard/templates/sync/", dashboard.template_sync, name="dashboard-templates-sync"),
    path("dashboard/webhooks/", dashboard.webhook_list, name="dashboard-webhooks"),
    path("dashboard/webhooks/<int:event_id>/", dashboard.webhook_detail, name="dashboard-webhook"),
    path("dashboard/webhooks/<int:event_id>/reprocess/", dashboard.webhook_reprocess,
         name="dashboard-webhook-reprocess"),
]

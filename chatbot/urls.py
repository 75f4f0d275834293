from django.urls import path

from . import views

app_name = "chatbot"

urlpatterns = [
    path("webhook/", views.whatsapp_webhook, name="webhook"),
    path("health/", views.health, name="health"),
    path("send/", views.send_message, name="send"),
    path("api/messages/<int:message_id>/", views.message_detail, name="api-message"),
    path("api/contacts/<str:wa_id>/", views.contact_detail, name="api-contact"),
    path("api/schema/", views.api_schema, name="api-schema"),
    path("media/", views.upload_media, name="media-upload"),
    path("media/<int:message_id>/", views.media_file, name="media-file"),
]

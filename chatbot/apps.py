from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatbotConfig(AppConfig):
    name = "chatbot"
    verbose_name = _("WhatsApp chatbot")

    def ready(self):
        from django.contrib.auth.signals import user_logged_out
        from django.db.backends.signals import connection_created

        from . import checks, presence, search  # noqa: F401 (importing checks registers them)

        search.register()
        connection_created.connect(search.register_sqlite_functions, dispatch_uid="chatbot.search")
        # Logging out (the dashboard's or the admin's): offline at once.
        user_logged_out.connect(presence.logged_out, dispatch_uid="chatbot.presence.out")

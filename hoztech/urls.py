from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from chatbot.dashboard.logins import ThrottledLoginView


def favicon(request):
    """Browsers ask for /favicon.ico on pages that name no icon (the admin's)."""
    return redirect(static("favicon.svg"))


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="chatbot:dashboard", permanent=False)),
    path("favicon.ico", favicon),
    path("chatbot/", include("chatbot.urls")),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from chatbot.dashboard import ThrottledLoginView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="chatbot:dashboard", permanent=False)),
    path("chatbot/", include("chatbot.urls")),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

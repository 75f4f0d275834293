"""The login page (`ThrottledLoginView`) and its limits: passwords cannot be guessed at speed, and a
stranger cannot lock an operator out.

- Only failures count: a success gives its attempt back, so an office sharing one account behind
  one address logs in as often as it likes.
- The limits are keyed by the identity Django's authentication will use (the form's username
  field strips and NFKC-normalises it; we also fold case), so " ana", "ana\\n" and "ａｎａ" share
  one count with "ana".
- A browser that logged in as a user before carries a signed *device cookie* for that user
  (OWASP's "device cookies"): its attempts count against that device alone, never against the
  user's count from everywhere, so guessing from elsewhere cannot lock the operator out of the
  browsers they use.

The numbers (each a GCRA rate in `ratelimit`, shared by every process):

- from a known device: 5 failures at once, then one a minute;
- from an address for one user: 5 failures at once, then one a minute;
- for one user from every unknown device together: 20 failures at once, then one every 3 minutes
  (at most about 500 guesses a day against any account, however many addresses an attacker has).
"""

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.core import signing
from django.utils.translation import ngettext

from .. import ratelimit

DEVICE_COOKIE = "hoztech_device"
DEVICE_SALT = "chatbot.logins.device"
DEVICE_DAYS = 180


@dataclass(frozen=True)
class Limit:
    key: str
    interval: float  # seconds per failure, once the burst is spent
    burst: int


def identity(username_field, raw):
    """The user a login attempt is about, as the authentication backend will look it up (the form
    field's own cleaning), case-folded."""
    return username_field.to_python(raw or "").casefold()


def device_of(request, user_identity):
    """The nonce of this browser's device cookie when it was issued for `user_identity`, else ""."""
    try:
        value = signing.get_cookie_signer(salt=DEVICE_SALT).unsign(
            request.COOKIES.get(DEVICE_COOKIE, ""), max_age=DEVICE_DAYS * 86400)
        user, nonce = value.split(":", 1)
    except (signing.BadSignature, ValueError):
        return ""
    return nonce if user == signing.b64_encode(user_identity.encode()).decode() else ""


def limits(request, user_identity):
    device = device_of(request, user_identity)
    if device:
        return [Limit(f"login:device:{device}", 60, 5)]
    address = request.META.get("REMOTE_ADDR", "")
    return [Limit(f"login:address:{address}:{user_identity}", 60, 5), Limit(f"login:user:{user_identity}", 180, 20)]


def take(attempt_limits):
    """Take one attempt from each limit; returns 0, or the seconds to wait (and takes nothing)."""
    taken = []
    for limit in attempt_limits:
        wait = ratelimit.allow(limit.key, interval=limit.interval, burst=limit.burst)
        if wait:
            give_back(taken)
            return wait
        taken.append(limit)
    return 0


def give_back(attempt_limits):
    for limit in attempt_limits:
        ratelimit.refund(limit.key, interval=limit.interval)


def remember_device(response, user_identity):
    """Set the device cookie for the user who just logged in."""
    user = signing.b64_encode(user_identity.encode()).decode()
    value = signing.get_cookie_signer(salt=DEVICE_SALT).sign(f"{user}:{secrets.token_urlsafe(16)}")
    response.set_cookie(DEVICE_COOKIE, value, max_age=DEVICE_DAYS * 86400, path="/accounts/", httponly=True,
                        secure=settings.SESSION_COOKIE_SECURE, samesite="Lax")


class ThrottledLoginView(LoginView):
    """Django's login, refusing with 429 when a user's failed attempts pass the limits above
    (failures only; a stranger's guesses never lock out a browser the user logged in on)."""

    def post(self, request, *args, **kwargs):
        user = identity(self.get_form().fields["username"], request.POST.get("username"))
        attempt_limits = limits(request, user)
        wait = take(attempt_limits)
        if wait:
            minutes = int(wait // 60) + 1
            throttled = ngettext("Too many failed attempts. Try again in %(minutes)d minute.",
                                 "Too many failed attempts. Try again in %(minutes)d minutes.", minutes) % {
                "minutes": minutes}
            return self.render_to_response(self.get_context_data(throttled=throttled), status=429)
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            give_back(attempt_limits)
            remember_device(response, user)
        return response

"""Who may do what in the dashboard.

- Operators are users in the *Operadores* group; staff users are administrators.
- A department marked `restricted` shows its conversations only to its own operators (and to
  whoever a conversation is assigned to); administrators see everything. Conversations with the
  bot or in an unrestricted department are every operator's.
"""

from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from ..models import Department

OPERATORS_GROUP = "Operadores"


def is_admin(user):
    return user.is_staff or user.is_superuser


def is_operator(user):
    return is_admin(user) or any(group.name == OPERATORS_GROUP for group in user.groups.all())


def operators():
    """The users who may be given a conversation: active operators and admins, each with their
    profile (their presence beside their name)."""
    return get_user_model().objects.filter(Q(is_staff=True) | Q(groups__name=OPERATORS_GROUP),
                                           is_active=True).distinct().select_related("profile").order_by("username")


def operator_required(view):
    """Logged in (else to the login page) and an operator or admin (else 403)."""
    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not is_operator(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)
    return wrapper


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not is_admin(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)
    return wrapper


def open_departments(user):
    """The departments whose conversations `user` may see, read once per request (kept on the
    user object, which lives as long as the request)."""
    if not hasattr(user, "_open_departments"):
        user._open_departments = list(Department.objects.filter(Q(restricted=False) | Q(operators=user))
                                      .values_list("pk", flat=True).distinct())
    return user._open_departments


def visible(queryset, user, prefix=""):
    """`queryset` of sessions (or of rows reaching a session through `prefix`, e.g. "session__" for
    messages) narrowed to what `user` may see. A row without a session (a message queued from the
    API) is every operator's. One small query for the departments, then plain conditions."""
    if is_admin(user):
        return queryset
    open_to_user = open_departments(user)
    return queryset.filter(Q(**{f"{prefix}department__isnull": True}) | Q(**{f"{prefix}department__in": open_to_user})
                           | Q(**{f"{prefix}assigned_to": user}))


def may_cancel_scheduled(user, message):
    """A scheduled message is cancelled by whoever scheduled it, or by an administrator."""
    return is_admin(user) or message.sent_by_id == user.pk

"""Automatic assignment: a department's waiting conversations handed to its online operators, each
up to their own limit (`OperatorProfile.max_conversations` open conversations), by the department's
policy (`Department.assignment`):

- off: nothing is handed out; operators take conversations (`handling`), as before;
- round-robin: the operator who was last given a conversation longest ago (`last_assigned_at`);
- least busy: the operator with the fewest open conversations (ties: round-robin).

Queues are handed out oldest first (`waiting_since`) whenever that can change something, right
after the change commits (`after_commit`): a conversation entered a queue (the bot's handoff, a
transfer to a department), an operator freed up (a conversation of theirs closed, transferred,
taken by a colleague or returned to the bot) or came online (`presence`); and in the worker's
minute sweep, the safety net for the rest (a limit raised, a policy switched on, a conversation
skipped because it was locked, a process that died between its commit and its hand-out).

The limit binds automatic assignment only: an operator who takes a conversation, or a colleague
who assigns one to them by name, may go over it (people decide; the next automatic one waits).

Concurrency: a hand-out runs in a transaction of its own, never inside another's. It locks the
candidate operators' profiles (FOR UPDATE, one statement in primary-key order, so hand-outs of
departments sharing operators queue up instead of deadlocking) before counting their open
conversations: two hand-outs never both fill an operator's last place, whatever the number of web
and worker processes. Waiting conversations are claimed with SKIP LOCKED: one is never given
twice, and a hand-out never waits for a session's lock while holding profiles.
"""

from datetime import UTC, datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import Count, F, Min
from django.utils import timezone

from . import events
from .models import Department, OperatorProfile, Session

Policy = Department.Assignment
AUTOMATIC = [Policy.ROUND_ROBIN, Policy.LEAST_BUSY]
NEVER = datetime.min.replace(tzinfo=UTC)
Membership = Department.operators.through


def after_commit(*, departments=(), operators=()):
    """Hand out the queues of `departments` (ids) and of the departments of `operators` (user
    ids) once the caller's transaction commits (at once outside one)."""
    departments, operators = [pk for pk in departments if pk], [pk for pk in operators if pk]
    if departments or operators:
        transaction.on_commit(partial(hand_out, departments=departments, operators=operators), robust=True)


def hand_out(*, departments=(), operators=(), now=None):
    """Hand out, now, the queues of `departments` (ids) and of the departments of `operators` (user
    ids). Returns {session id: user id} of those given."""
    ids = set(departments) | set(Membership.objects.filter(user_id__in=operators).values_list("department_id",
                                                                                               flat=True))
    return hand_out_queues(Department.objects.filter(pk__in=ids), now=now)


def sweep(now=None):
    """Every automatic queue handed out (the worker's minute sweep). Returns how many were given."""
    return len(hand_out_queues(Department.objects.all(), now=now))


def hand_out_queues(departments, *, now=None):
    """The waiting conversations of `departments` (those that assign automatically), each queue
    oldest first and the longest-waiting queue first, given to the online operators with room."""
    now = now or timezone.now()
    # From the waiting conversations (the status index), not from each department's every one.
    order = [pk for pk, _oldest in Session.objects.filter(
        status=Session.Status.WAITING, assigned_to__isnull=True,
        department__in=departments.filter(assignment__in=AUTOMATIC))
        .values_list("department_id").annotate(oldest=Min("waiting_since"))
        .order_by(F("oldest").asc(nulls_last=True), "department_id")]
    if not order:
        return {}
    found = Department.objects.in_bulk(order)
    queues = [found[pk] for pk in order if pk in found]
    members = list(Membership.objects.filter(department__in=queues).values_list("department_id", "user_id"))
    given = {}
    with transaction.atomic():
        candidates = {profile.user_id: profile for profile in (
            OperatorProfile.objects.online(now).select_for_update(of=("self",))
            .filter(presence=OperatorProfile.Presence.ONLINE, user__is_active=True,
                    user_id__in={user_id for _department, user_id in members})
            .order_by("pk"))}
        if not candidates:
            return given
        load = dict(Session.objects.filter(status=Session.Status.OPEN, assigned_to__in=list(candidates))
                    .values_list("assigned_to").annotate(n=Count("pk")).order_by())
        for profile in candidates.values():
            profile.load = load.get(profile.user_id, 0)
        for department in queues:
            team = [candidates[user_id] for pk, user_id in members if pk == department.pk and user_id in candidates]
            given.update(hand_out_queue(department, team, now=now, sequence=len(given)))
    return given


def hand_out_queue(department, team, *, now, sequence):
    """One department's queue to `team` (locked profiles with their `load`)."""
    room = sum(max(profile.max_conversations - profile.load, 0) for profile in team)
    if room == 0:
        return {}
    waiting = list(Session.objects.select_for_update(skip_locked=True, of=("self",))
                   .filter(status=Session.Status.WAITING, assigned_to__isnull=True, department=department)
                   .order_by(F("waiting_since").asc(nulls_last=True), "pk").values_list("pk", flat=True)[:room])
    given = {}
    for session_id in waiting:
        profile = choose(team, department.assignment)
        # A distinct time for each conversation of one hand-out, so round-robin keeps their order.
        given_at = now + timedelta(microseconds=sequence + len(given))
        Session.objects.filter(pk=session_id).update(status=Session.Status.OPEN, assigned_to_id=profile.user_id,
                                                     assigned_at=now)
        OperatorProfile.objects.filter(pk=profile.pk).update(last_assigned_at=given_at)
        profile.load, profile.last_assigned_at = profile.load + 1, given_at
        given[session_id] = profile.user_id
    events.conversations(list(given), "conversation.assigned")
    return given


def choose(team, policy):
    """The operator with room who comes next by `policy`."""
    free = [profile for profile in team if profile.load < profile.max_conversations]
    if policy == Policy.LEAST_BUSY:
        return min(free, key=lambda profile: (profile.load, profile.last_assigned_at or NEVER, profile.pk))
    return min(free, key=lambda profile: (profile.last_assigned_at or NEVER, profile.pk))

"""Search as people type it: case and accents ignored ("joao" finds "João", "acai" "Açaí"), in
contact names and numbers and in message texts.

A `folded` lookup on text columns (`name__folded__contains=fold(q)`) compares
f_unaccent(lower(column)) with the folded term: PostgreSQL's function comes with trigram indexes
(migration 0006), SQLite's is registered here on each connection.
"""

import unicodedata

from django.db.models import CharField, Q, TextField, Transform


def fold(text):
    """Lowercase, without accents: how both sides of a search compare."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


class Folded(Transform):
    lookup_name = "folded"
    template = "f_unaccent(lower(%(expressions)s))"
    output_field = TextField()


def register(sender=None, **kwargs):
    CharField.register_lookup(Folded)
    TextField.register_lookup(Folded)


def register_sqlite_functions(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        # SQLite's lower() folds ASCII only: this folds the rest too.
        connection.connection.create_function("f_unaccent", 1, fold, deterministic=True)


def contact_matches(q, prefix=""):
    """Contacts (through `prefix`) whose name contains `q`, or whose number contains its digits."""
    digits = "".join(ch for ch in q if ch.isascii() and ch.isdigit())
    match = Q(**{f"{prefix}name__folded__contains": fold(q)})
    if digits:
        match |= Q(**{f"{prefix}wa_id__contains": digits})
    return match


# Fewer letters give a trigram index nothing to look up (and match nearly every message).
TEXT_SEARCH_FROM = 3


def searches_text(q):
    """Whether `q` is long enough to search message texts (names and numbers: always)."""
    return len(fold(q).strip()) >= TEXT_SEARCH_FROM


def message_matches(q, prefix=""):
    """Messages (through `prefix`) whose text contains `q`, case and accents ignored."""
    return Q(**{f"{prefix}text__folded__contains": fold(q)})

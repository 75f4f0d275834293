"""Case- and accent-insensitive search of names and message texts (the dashboard's search box).

On PostgreSQL: `f_unaccent`, an IMMUTABLE wrapper of the unaccent extension (a trusted extension,
like pg_trgm), and trigram indexes on f_unaccent(lower(...)) that serve `LIKE '%term%'`. On SQLite
the same function is registered on each connection (chatbot/apps.py) and the search scans.
"""

from django.db import migrations

FUNCTION = ("CREATE OR REPLACE FUNCTION f_unaccent(text) RETURNS text AS "
            "$$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$ "
            "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT")
FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    FUNCTION,
    "CREATE INDEX IF NOT EXISTS contact_name_search_idx ON chatbot_contact "
    "USING gin (f_unaccent(lower(name)) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS message_text_search_idx ON chatbot_message "
    "USING gin (f_unaccent(lower(text)) gin_trgm_ops)",
    "DROP INDEX IF EXISTS contact_name_trgm_idx",  # UPPER(name): the search no longer uses it
]
BACKWARD = [
    "CREATE INDEX IF NOT EXISTS contact_name_trgm_idx ON chatbot_contact USING gin (UPPER(name) gin_trgm_ops)",
    "DROP INDEX IF EXISTS message_text_search_idx",
    "DROP INDEX IF EXISTS contact_name_search_idx",
    "DROP FUNCTION IF EXISTS f_unaccent(text)",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("chatbot", "0005_labels_attributes_operator_profiles")]

    operations = [migrations.RunPython(forward, backward)]

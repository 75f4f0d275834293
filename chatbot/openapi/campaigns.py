"""The campaigns API's part of the OpenAPI description (design.md, "Campaigns API"): its paths and
schemas, merged into the document by chatbot/openapi/__init__.py."""

from .answers import RATE_LIMITED, UNAUTHORIZED, answer, error, forbidden

CAMPAIGN_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
CAMPAIGN_NOT_FOUND = answer("No campaign with this id.", schema=error("not_found", "No campaign with this id."))
CAMPAIGN_STATUSES = ["scheduled", "running", "paused", "finished", "cancelled"]
SKIP_REASONS = ["opted_out", "blocked", "invalid", "no_opt_in", "incomplete"]


def move(summary, conflict):
    return {
        "post": {
            "summary": summary,
            "description": "Also answered with a trailing slash.",
            "parameters": CAMPAIGN_ID,
            "responses": {
                "200": answer("The campaign, moved.", "Campaign"),
                "401": UNAUTHORIZED,
                "403": forbidden("campaigns"),
                "404": CAMPAIGN_NOT_FOUND,
                "409": answer(conflict, schema=error("conflict", "Only a paused campaign can be resumed…")),
                "429": RATE_LIMITED,
            },
        }
    }


CAMPAIGN_PATHS = {
    "/api/campaigns/": {
        "get": {
            "summary": "The campaigns, newest first",
            "parameters": [
                {"name": "status", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": CAMPAIGN_STATUSES}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
            ],
            "responses": {
                "200": answer("Campaign objects.", schema={"type": "array",
                                                            "items": {"$ref": "#/components/schemas/Campaign"}}),
                "400": answer("A bad status or limit.", schema=error("invalid_request", "…", field=True)),
                "401": UNAUTHORIZED,
                "403": forbidden("campaigns"),
                "429": RATE_LIMITED,
            },
        },
        "post": {
            "summary": "Create a campaign: one approved template sent to an audience",
            "description": (
                "The parameters are checked against the synced template before anything is stored. Opted-out "
                "(marketing templates), blocked and invalid contacts are skipped and counted; each recipient is "
                "sent at most once, paced to the number's throughput and BULK_MESSAGE_DELAY. Without "
                "`scheduled_at` (or with a past one) it starts at once."
            ),
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                            "description": "A repeat with the same key and body within 24 h returns the first "
                                           "answer and creates nothing."}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/CampaignRequest"},
                        "example": {
                            "name": "Black Friday", "template": {"name": "promo_semana", "language": "pt_BR"},
                            "audience": {"labels": ["clientes"]}, "scheduled_at": "2025-11-28T09:00:00",
                            "variables": {"1": "{first_name|cliente}", "2": "{attr:cupom|BEMVINDO}"},
                        },
                    }
                },
            },
            "responses": {
                "201": answer("Created.", "CampaignCreated"),
                "400": answer(
                    "Refused, the field named: template.name (unknown or unapproved template), variables or "
                    "variables.N (parameters that do not fit the template), audience (no one to send to), "
                    "scheduled_at, window, department, phone_number_id, name, or a body that is not JSON.",
                    schema=error("invalid_request", "…", field=True),
                ),
                "401": UNAUTHORIZED,
                "403": forbidden("campaigns"),
                "409": answer("Idempotency-Key reused with another body.", schema=error("idempotency_key_reused", "…")),
                "413": answer("Body too large.", schema=error("too_large", "…")),
                "429": RATE_LIMITED,
            },
        },
    },
    "/api/campaigns/{id}/": {
        "get": {
            "summary": "A campaign with its live figures",
            "parameters": CAMPAIGN_ID,
            "responses": {
                "200": answer("The campaign.", "Campaign"),
                "401": UNAUTHORIZED,
                "403": forbidden("campaigns"),
                "404": CAMPAIGN_NOT_FOUND,
                "429": RATE_LIMITED,
            },
        }
    },
    "/api/campaigns/{id}/pause": move(
        "Pause a scheduled or sending campaign (messages not yet handed to Meta are taken back)",
        "The campaign is not scheduled or sending."),
    "/api/campaigns/{id}/resume": move("Resume a paused campaign", "The campaign is not paused."),
    "/api/campaigns/{id}/cancel": move(
        "Cancel a campaign: nothing more is sent", "The campaign has already finished or been cancelled."),
    "/api/campaigns/{id}/recipients.csv": {
        "get": {
            "summary": "One row per recipient (CSV, streamed)",
            "description": (
                "Comma-separated, UTF-8, CRLF, a header row. `status` is the message's (queued, sending, sent, "
                "delivered, read, played, failed), else `pending`, `cancelled` or `skipped:<reason>`; times are "
                "ISO 8601, empty when not reached."
            ),
            "parameters": CAMPAIGN_ID,
            "responses": {
                "200": {
                    "description": "The recipients.",
                    "content": {"text/csv": {"schema": {"type": "string"}, "example": (
                        "wa_id,name,status,error_code,sent_at,delivered_at,read_at,replied_at\r\n"
                        "5511987654321,Maria,read,,2025-11-28T09:00:01-03:00,2025-11-28T09:00:03-03:00,"
                        "2025-11-28T09:05:00-03:00,\r\n")}},
                },
                "401": UNAUTHORIZED,
                "403": forbidden("campaigns"),
                "404": CAMPAIGN_NOT_FOUND,
                "429": RATE_LIMITED,
            },
        }
    },
}

_TIME = {"type": ["string", "null"], "format": "date-time"}
_TEXTS = {"type": "object", "additionalProperties": {"type": "string"}}

CAMPAIGN_SCHEMAS = {
    "CampaignRequest": {
        "type": "object",
        "required": ["name", "template", "audience"],
        "properties": {
            "name": {"type": "string", "maxLength": 120},
            "template": {
                "type": "object",
                "required": ["name", "language"],
                "properties": {
                    "name": {"type": "string", "description": "An approved, synced template."},
                    "language": {"type": "string", "example": "pt_BR"},
                    "components": {
                        "type": "array", "items": {"type": "object"},
                        "description": "Meta-shaped components whose parameters are texts (which may hold the "
                                       "expressions of `variables`), a header's media, URL buttons' suffixes; "
                                       "the top-level `variables`, `header`, `buttons` take precedence.",
                    },
                },
            },
            "audience": {
                "type": "object",
                "description": "Contacts with any of `labels`, plus the numbers in `wa_ids`, narrowed by "
                               "`attributes` and `last_contact_days`.",
                "properties": {
                    "labels": {"type": "array", "items": {"type": "string"}},
                    "wa_ids": {"type": "array", "items": {"type": "string"}},
                    "attributes": _TEXTS,
                    "last_contact_days": {"type": "integer", "minimum": 1},
                    "require_opt_in": {"type": "boolean", "description": "Skip contacts with no recorded opt-in."},
                },
            },
            "phone_number_id": {"type": "string", "description": "The sending number; the default one if left out."},
            "scheduled_at": {"type": "string", "format": "date-time",
                             "description": "ISO 8601; without an offset, in the server's TIME_ZONE."},
            "variables": {
                **_TEXTS,
                "description": "Each placeholder's value: text with {name}, {first_name}, {wa_id} or {attr:key}, "
                               "each with an optional fallback ({name|cliente}); `header.N` for a text header's.",
                "example": {"1": "{name}", "2": "{attr:pedido}"},
            },
            "header": {"type": "object", "description": 'A media header: {"link": "https://…"} or {"id": "…"}.'},
            "buttons": {**_TEXTS, "description": "A dynamic URL button's suffix by the button's index."},
            "window": {
                "type": "object", "description": "Daily sending hours, in TIME_ZONE.",
                "properties": {"start": {"type": "string", "example": "08:00"},
                               "end": {"type": "string", "example": "20:00"}},
            },
            "department": {"type": "string", "description": "The department that answers replies (its name); "
                                                            "without it, the bot does."},
        },
    },
    "CampaignCreated": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": ["scheduled", "running"]},
            "recipients": {"type": "integer", "description": "Those who will be sent it."},
            "skipped": {"type": "object", "properties": {reason: {"type": "integer"} for reason in SKIP_REASONS}},
        },
    },
    "Campaign": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": CAMPAIGN_STATUSES},
            "recipients": {"type": "integer"},
            "counts": {
                "type": "object",
                "description": "`sent` counts every message Meta accepted (delivered and read ones too); "
                               "`queued` those not sent yet.",
                "properties": {name: {"type": "integer"} for name in
                               ("queued", "sent", "delivered", "read", "failed", "replied", "skipped")},
            },
            "failures": {"type": "object", "additionalProperties": {"type": "integer"},
                         "description": "Failed messages by Meta's error code.", "example": {"131026": 3}},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": _TIME,
            "finished_at": _TIME,
            "scheduled_at": {"type": "string", "format": "date-time"},
            "template": {"type": "object", "properties": {"name": {"type": "string"}, "language": {"type": "string"},
                                                          "category": {"type": "string"}}},
            "phone_number_id": {"type": "string"},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "pause_reason": {"type": ["string", "null"], "enum": ["manual", "quality", "spam", "template", None]},
            "pause_detail": {"type": "string"},
        },
    },
}

"""The OpenAPI 3.1 description of the integrators' API, served at /chatbot/api/schema/.

Written by hand, beside design.md's contract it mirrors: the API is small, and a generator would
be a dependency bigger than this package. The campaigns' paths and schemas are in `campaigns`, the
answers all paths share in `answers`.
"""

import hoztech

from ..whatsapp.validation import CHECKS
from ..whatsapp.vocabulary import Status
from .answers import NOT_FOUND, RATE_LIMITED, UNAUTHORIZED, forbidden
from .answers import answer as _answer
from .answers import error as _error
from .campaigns import CAMPAIGN_PATHS, CAMPAIGN_SCHEMAS

# What the send API takes: the types chatbot/whatsapp/validation.py checks.
MESSAGE_TYPES = [str(kind) for kind in CHECKS]

SCHEMA = {
    "openapi": "3.1.0",
    "info": {
        "title": "HOZ TECH WhatsApp chatbot API",
        "version": hoztech.__version__,
        "description": (
            "Send WhatsApp messages through the business number and read their status. Create a token "
            "with `python manage.py whatsapp_chatbot create-api-token NAME [--scope S …]`: scopes `send` "
            "(send messages, upload media), `read` (read messages), `export` (contact exports), `campaigns`; "
            "without --scope, `send` and `read`. A call outside the token's scopes is answered 403 "
            "`forbidden_scope`. Message bodies are Cloud API message objects, exactly as Meta's /messages "
            "takes them."
        ),
    },
    "servers": [{"url": "/chatbot"}],
    "security": [{"bearer": []}],
    "paths": {
        "/send/": {
            "post": {
                "summary": "Queue a message",
                "description": (
                    "Checked against Meta's documented limits, the 24-hour customer service window (only "
                    "templates outside it) and marketing opt-outs, then queued; the sender paces it to the "
                    "number's throughput and retries transient failures."
                ),
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "A repeat with the same key and body within 24 h returns the first answer.",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/SendRequest"},
                            "example": {"to": "5511987654321", "type": "text", "text": {"body": "Olá!"}},
                        }
                    },
                },
                "responses": {
                    "202": _answer("Queued.", "Queued"),
                    "400": _answer(
                        "Invalid message (the field is named).", schema=_error("invalid_request", "…", field=True)
                    ),
                    "401": UNAUTHORIZED,
                    "403": forbidden("send"),
                    "409": _answer(
                        "Idempotency-Key reused with another body.", schema=_error("idempotency_key_reused", "…")
                    ),
                    "413": _answer("Body too large.", schema=_error("too_large", "…")),
                    "422": _answer(
                        "Refused by WhatsApp's rules: outside_customer_service_window, opted_out, contact_blocked.",
                        schema=_error("outside_customer_service_window", "…"),
                    ),
                    "429": RATE_LIMITED,
                },
            }
        },
        "/media/": {
            "post": {
                "summary": "Upload a file to Meta",
                "description": 'Returns the media id to send it by (`{"image": {"id": …}}`). Limited by MAX_FILE_SIZE, '
                "ALLOWED_EXTENSIONS and Meta's per-type limits.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "phone_number_id": {"type": "string"},
                                },
                                "required": ["file"],
                            }
                        }
                    },
                },
                "responses": {
                    "200": _answer("Uploaded.", schema={"type": "object", "properties": {"id": {"type": "string"}}}),
                    "400": _answer("Missing or disallowed file.", schema=_error("invalid_media", "…", field=True)),
                    "401": UNAUTHORIZED,
                    "403": forbidden("send"),
                    "413": _answer("File too large.", schema=_error("invalid_media", "…", field=True)),
                    "429": RATE_LIMITED,
                },
            }
        },
        "/api/messages/{id}/": {
            "get": {
                "summary": "A message, inbound or outbound, with its status",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {
                    "200": _answer("The message.", "Message"),
                    "401": UNAUTHORIZED,
                    "403": forbidden("read"),
                    "404": NOT_FOUND,
                    "429": RATE_LIMITED,
                },
            }
        },
        "/api/contacts/{wa_id}/": {
            "get": {
                "summary": "Everything kept about a contact (LGPD data portability)",
                "parameters": [{"name": "wa_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _answer("The contact export.", "ContactExport"),
                    "401": UNAUTHORIZED,
                    "403": forbidden("export"),
                    "404": NOT_FOUND,
                    "429": RATE_LIMITED,
                },
            }
        },
        **CAMPAIGN_PATHS,
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "SendRequest": {
                "type": "object",
                "required": ["to", "type"],
                "properties": {
                    "to": {
                        "type": "string",
                        "description": "Phone number with country code, or a business-scoped user ID.",
                    },
                    "type": {"type": "string", "enum": MESSAGE_TYPES},
                    "context": {"type": "object", "properties": {"message_id": {"type": "string"}}},
                    "phone_number_id": {
                        "type": "string",
                        "description": "The sending number; the default one if left out.",
                    },
                    **{
                        kind: {"type": ["object", "array"] if kind == "contacts" else "object"}
                        for kind in MESSAGE_TYPES
                    },
                },
            },
            "Queued": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "status": {"type": "string", "const": "queued"},
                    "to": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
            "Message": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "wamid": {"type": ["string", "null"]},
                    "direction": {"type": "string", "enum": ["in", "out"]},
                    "contact": {"type": "string"},
                    "phone_number_id": {"type": "string"},
                    "type": {"type": "string"},
                    "text": {"type": "string"},
                    "payload": {"type": "object"},
                    "reply_to": {"type": ["string", "null"]},
                    "status": {
                        "type": "string",
                        "enum": [status.value for status in Status if status != Status.UNKNOWN],
                    },
                    "error": {
                        "type": ["object", "null"],
                        "properties": {
                            "code": {"type": ["integer", "null"]},
                            "title": {"type": "string"},
                            "details": {"type": "string"},
                            "explanation": {"type": "string"},
                        },
                    },
                    "timestamp": {"type": "string", "format": "date-time"},
                    "status_at": {
                        "type": "object",
                        "properties": {
                            name: {"type": ["string", "null"], "format": "date-time"}
                            for name in ("sent", "delivered", "read", "failed")
                        },
                    },
                },
            },
            "ContactExport": {
                "type": "object",
                "properties": {
                    "contact": {
                        "type": "object",
                        "properties": {
                            "wa_id": {"type": "string"},
                            "user_id": {"type": "string"},
                            "name": {"type": "string"},
                            "first_seen": {"type": "string", "format": "date-time"},
                            "last_seen": {"type": "string", "format": "date-time"},
                            "opted_out": {"type": "boolean"},
                        },
                    },
                    "sessions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "integer"},
                                "status": {"type": "string", "enum": ["bot", "waiting", "open", "closed"]},
                                "queue": {"type": ["string", "null"]},
                                "started_at": {"type": "string", "format": "date-time"},
                                "closed_at": {"type": ["string", "null"], "format": "date-time"},
                                "csat": {
                                    "type": ["object", "null"],
                                    "description": "The customer's satisfaction answer; null until they rated it.",
                                    "properties": {
                                        "score": {"type": "integer", "minimum": 1, "maximum": 5},
                                        "comment": {"type": "string", "description": "\"\" when none was given."},
                                        "answered_at": {"type": "string", "format": "date-time"},
                                    },
                                },
                            },
                        },
                    },
                    "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
                    "media": {
                        "type": "array",
                        "description": "The files kept for the contact's messages.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "message_id": {"type": "integer"},
                                "type": {"type": "string"},
                                "mime_type": {"type": "string"},
                                "filename": {"type": "string"},
                                "size": {"type": ["integer", "null"]},
                                "sha256": {"type": "string"},
                                "file": {"type": ["string", "null"]},
                                "status": {"type": "string"},
                            },
                        },
                    },
                },
            },
            **CAMPAIGN_SCHEMAS,
        },
    },
}


"""The answers every path of the OpenAPI description shares: the contract's error JSON, and the
refusals common to all (no token, a missing scope, too many requests, not found)."""


def error(code_example, message_example, field=False):
    properties = {
        "code": {"type": "string", "example": code_example},
        "message": {"type": "string", "example": message_example},
    }
    if field:
        properties["field"] = {"type": "string", "example": "interactive.action.buttons[3].reply.title"}
    return {
        "type": "object",
        "properties": {"error": {"type": "object", "properties": properties, "required": ["code", "message"]}},
    }


def answer(description, schema_ref=None, schema=None, headers=None):
    described = {"description": description}
    if schema_ref or schema:
        schema = schema or {"$ref": f"#/components/schemas/{schema_ref}"}
        described["content"] = {"application/json": {"schema": schema}}
    if headers:
        described["headers"] = headers
    return described


UNAUTHORIZED = answer(
    "Missing, invalid or revoked token.", schema=error("unauthorized", "Missing or invalid API token.")
)
RATE_LIMITED = answer(
    "Too many requests for this token.",
    schema=error("rate_limited", "Too many requests…"),
    headers={"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
)
NOT_FOUND = answer("Not found.", schema=error("not_found", "No message with this id."))


def forbidden(scope):
    return answer(f"The token lacks the scope `{scope}`.", schema=error("forbidden_scope", "This token may not…"))

"""One usage API request, read the same way by both doors (the Django view and the fast
path): the bearer key, the body cap, the JSON, the report's fields, the Idempotency-Key; and
the JSON answer's bytes and headers.

Cheap checks come first: a missing key, an oversized or malformed body are refused before the
database is touched, so a flood of bad requests cannot slow the good ones. Every error is
`{"error": code, "detail": sentence}` with its HTTP status (`errors.UsageError`).
"""

import json

from django.conf import settings

from asksage_admin.lib.inputs import text_problem
from asksage_admin.lib.metrics import usage_reported
from tokens.models import TokenKind
from tokens.usage_api.errors import UsageError, error_headers, invalid_key
from tokens.usage_api.keys import api_key_well_formed
from tokens.usage_api.results import UsageRequest

MAX_BODY_BYTES = getattr(settings, "USAGE_API_MAX_BODY_BYTES", 4096)
MAX_IDEMPOTENCY_KEY = 200
CONTENT_TYPE = "application/json"
# On every answer of the API, success or error: a balance is never served from a cache.
CACHE_CONTROL = "no-store"


# One encoder for every answer: json.dumps with an option builds a new one each call.
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def encode(data: dict) -> bytes:
    """An answer's body. UTF-8 as is (JSON's own encoding): details quote names with “ ”."""
    return _ENCODER.encode(data).encode()


def error_answer(error: UsageError) -> tuple[int, bytes, dict[str, str]]:
    """An error's status, body and own headers, as both doors send them."""
    return error.status, encode(error.as_dict()), error_headers(error)


def bearer_key(header: str) -> str:
    """The secret presented in an Authorization header, if it has the shape of a key; no
    database access."""
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise UsageError(
            401, "missing_key", "Send the organization's API key: Authorization: Bearer <key>."
        )
    key = key.strip()
    if not api_key_well_formed(key):
        raise invalid_key()
    return key


def body_too_large() -> UsageError:
    return UsageError(
        413, "body_too_large", f"The request body is larger than {MAX_BODY_BYTES:,} bytes."
    )


def declared_too_large(content_length: str | None) -> bool:
    """Whether the declared length is over the cap: refused before reading the body."""
    try:
        return int(content_length or 0) > MAX_BODY_BYTES
    except ValueError:
        return False


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_json(raw: bytes) -> object:
    """A body (at most the cap) decoded as `json.loads` would; NaN and Infinity are not
    JSON. One decoder for every request: building one per call costs more than decoding."""
    try:
        return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise UsageError(400, "malformed_json", "The request body is not valid JSON.") from exc


def idempotency_key(header: str) -> str:
    """The report's Idempotency-Key: required, so a gateway's retry is never counted twice."""
    key = header.strip()
    if not key:
        raise UsageError(
            400,
            "missing_idempotency_key",
            "Send an Idempotency-Key header, unique per usage (for example a UUID): a retry "
            "with the same key is counted once.",
        )
    if len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise UsageError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be printable text of at most {MAX_IDEMPOTENCY_KEY} characters.",
        )
    return key


def usage_report(body: bytes, idempotency_header: str) -> tuple[UsageRequest, str]:
    """The report in a body (read within the cap) and its Idempotency-Key, checked in the
    API's order: the body, its fields, then the key. Each door checks the bearer key first
    (`bearer_key`) and reads the body its own way."""
    usage = parse_usage(decode_json(body))
    return usage, idempotency_key(idempotency_header)


_MAX_TOKENS = 2**53 - 1
_FIELDS = ("user", "kind", "tokens", "model")
_KINDS = frozenset(TokenKind.values)


def parse_usage(data: object) -> UsageRequest:
    """Validate a decoded JSON body; UsageError(400) says which field is wrong and why."""

    def bad(detail: str) -> UsageError:
        return UsageError(400, "invalid_request", detail)

    if not isinstance(data, dict):
        raise bad('The body must be a JSON object: {"user", "kind", "tokens", "model"}.')
    missing = [name for name in _FIELDS if name not in data]
    if missing:
        raise bad(f"Missing field{'s' * (len(missing) > 1)}: {', '.join(missing)}.")
    email, kind, tokens, model = (data[name] for name in _FIELDS)
    email = parse_email(email)
    if not isinstance(kind, str) or kind not in _KINDS:
        raise UsageError(400, "unknown_kind", "“kind” must be “inference” or “embedding”.")
    # bool is an int in Python; JSON true is not a number of tokens.
    if isinstance(tokens, bool) or not isinstance(tokens, int):
        raise bad("“tokens” must be a whole number.")
    if tokens <= 0:
        raise bad("“tokens” must be at least 1.")
    if tokens > _MAX_TOKENS:
        raise bad(f"“tokens” cannot exceed {_MAX_TOKENS:,}.")
    if not isinstance(model, str) or not model.strip() or len(model.strip()) > 100:
        raise bad("“model” must be the model's name (1 to 100 characters).")
    if problem := text_problem(model):
        raise bad(f"“model” {problem}.")
    return UsageRequest(email=email, kind=kind, tokens=tokens, model=model.strip())


def parse_email(value: object) -> str:
    """A user's email as the API receives it (body or URL), lowercased; UsageError(400) if it
    cannot be one. NUL and unpaired surrogates are refused here: PostgreSQL cannot take them
    (a 500 there), SQLite would look them up; both now answer the same 400."""
    if not isinstance(value, str) or "@" not in value or len(value) > 254:
        raise UsageError(400, "invalid_request", "“user” must be the user's email address.")
    if problem := text_problem(value):
        raise UsageError(400, "invalid_request", f"“user” {problem}.")
    return value.strip().lower()


# Statuses a report gets when its request is malformed, as against refused by a rule.
_INVALID_STATUSES = frozenset({400, 411, 413, 415})


def report_counted(status: int, *, replayed: bool = False, code: str = "") -> None:
    """Count one usage report's outcome for /metrics, the same way on both doors: accepted or
    replayed (200), invalid (malformed), unavailable (503), refused by a rule (the error code
    says which) or anything else."""
    if status == 200:
        usage_reported("replayed" if replayed else "accepted")
    elif status == 503:
        usage_reported("unavailable", code)
    elif status in _INVALID_STATUSES:
        usage_reported("invalid", code)
    elif 400 <= status < 500:
        usage_reported("refused", code)
    else:
        usage_reported("error", code)

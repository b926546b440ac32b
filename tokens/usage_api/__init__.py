"""The usage API (`/api/v1/`): the gateway reports token usage, within each user's monthly max.

Two doors answer `POST /api/v1/usage` alike: the Django view (`views`) and, under ASGI on
PostgreSQL, the batched fast path (`fastpath`). Modules import strictly downwards, in this
order (no cycles, no function-level imports):

    results     the validated report, a balance, a recorded result (plain data)
    errors      UsageError, its factories and the headers an error answer carries
    tables      quoted table names from the models' `_meta.db_table`
    keys        API-key hashing and authentication (key writes: tokens.services.api_keys)
    members     the member a report is for, locked or not
    protocol    one request's parsing, shared by both doors: bearer key, body cap, JSON,
                Idempotency-Key, the report's fields; the JSON answer's encoding
    sqlite      recording on SQLite, statement by statement
    postgres    recording on PostgreSQL, one statement for a batch
    hook        the policy hook both doors call after a usage is recorded
    recording   the synchronous entry point: picks the database's path, runs the hook
    balance     a user's balance
    openapi     the OpenAPI document
    views, urls the Django door
    pool, batcher, gate, fastpath   the ASGI door
"""

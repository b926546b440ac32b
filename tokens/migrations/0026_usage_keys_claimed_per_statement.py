"""The events' Idempotency-Keys claimed once per INSERT statement, not once per row.

0018's trigger ran a PL/pgSQL function per event, each running its own INSERT into the
partitioned keys table (an executor start and a partition routing per event: about a fifth
of the usage statement's database CPU, measured with batches of 8). Here one AFTER … FOR
EACH STATEMENT trigger reads the statement's new events (a transition table) and claims all
their keys in one INSERT … SELECT, with the same rule: the event's month, and the previous
month too on a month's first UTC day. Whatever inserts the events (the usage statement, the
ORM, COPY into the parent table) still claims their keys; a concurrent duplicate still
fails the whole statement with the keys' unique violation (now at the statement's end).
"""

from django.db import migrations

EVENTS, KEYS = "tokens_usageevent", "tokens_usagekey"
KEY_COLUMNS = (
    "idempotency_key, organization_id, month, id, created_at, request_hash, used_after, max_after"
)
OLD_TRIGGER, OLD_FUNCTION = "usage_event_claims_its_key", "tokens_usage_event_claim_key"
TRIGGER, FUNCTION = "usage_events_claim_their_keys", "tokens_usage_events_claim_keys"

CLAIM_SQL = f"""
CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {KEYS} ({KEY_COLUMNS})
  SELECT n.idempotency_key, n.organization_id, m.month, n.id, n.created_at, n.request_hash,
      n.used_after, n.max_after
  FROM new_events n
  CROSS JOIN LATERAL (SELECT date_trunc('month', n.created_at AT TIME ZONE 'UTC')::date) f(first)
  CROSS JOIN LATERAL (
    SELECT f.first
    UNION ALL
    SELECT (f.first - interval '1 month')::date WHERE n.created_at AT TIME ZONE 'UTC' < f.first + 1
  ) m(month)
  WHERE n.idempotency_key <> '';
  RETURN NULL;
END $$;
CREATE TRIGGER {TRIGGER} AFTER INSERT ON {EVENTS}
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}();
DROP TRIGGER {OLD_TRIGGER} ON {EVENTS};
DROP FUNCTION {OLD_FUNCTION}();
"""

# Back to 0018's row trigger (its own text, kept here so 0018 may change without this).
ROW_CLAIM_SQL = f"""
CREATE FUNCTION {OLD_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  first date := date_trunc('month', NEW.created_at AT TIME ZONE 'UTC')::date;
BEGIN
  INSERT INTO {KEYS} ({KEY_COLUMNS}) VALUES (NEW.idempotency_key, NEW.organization_id, first,
      NEW.id, NEW.created_at, NEW.request_hash, NEW.used_after, NEW.max_after);
  IF NEW.created_at AT TIME ZONE 'UTC' < first + 1 THEN
    INSERT INTO {KEYS} ({KEY_COLUMNS}) VALUES (NEW.idempotency_key, NEW.organization_id,
        (first - interval '1 month')::date, NEW.id, NEW.created_at, NEW.request_hash,
        NEW.used_after, NEW.max_after);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER {OLD_TRIGGER} BEFORE INSERT ON {EVENTS}
  FOR EACH ROW WHEN (NEW.idempotency_key <> '') EXECUTE FUNCTION {OLD_FUNCTION}();
DROP TRIGGER {TRIGGER} ON {EVENTS};
DROP FUNCTION {FUNCTION}();
"""


def claim_per_statement(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CLAIM_SQL)


def claim_per_row(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ROW_CLAIM_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("tokens", "0025_usage_rollups_updates_stay_hot"),
    ]

    operations = [
        migrations.RunPython(claim_per_statement, claim_per_row),
    ]

"""The database refuses UPDATE and DELETE on audit rows, from any client (a shell, a script,
the ORM), except in a transaction that set a switch with set_config(name, 'on', true):
- kefu.audit_retention: DELETE (the retention job);
- kefu.audit_erasure: UPDATE of before/after/detail/actor_label/ip only (erasure redacts a
  customer's personal data; the row's who/what/when/target cannot change).
TRUNCATE is not covered: test databases are flushed with it, and whoever may TRUNCATE owns
the table and could drop the trigger anyway."""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_setting('kefu.audit_retention', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit log rows are append-only: DELETE refused (retention job only)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF current_setting('kefu.audit_erasure', true) = 'on'
       AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.action = OLD.action
       AND NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id
       AND NEW.target_type = OLD.target_type AND NEW.target_id = OLD.target_id
       AND NEW.customer_id IS NOT DISTINCT FROM OLD.customer_id THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit log rows are append-only: UPDATE refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_entry_append_only
    BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_auditentry;
DROP FUNCTION IF EXISTS audit_entry_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]

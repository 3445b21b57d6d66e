from django.core.management.base import BaseCommand

from apps.audit.services import audit_record
from apps.core.fields import encrypted_columns_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key of KEFU_SECRET_KEYS (idempotent). "
        "Rotation: put a new key first, run this, then remove the old key."
    )

    def handle(self, *args, **options):
        total, counts = 0, {}
        for column in encrypted_columns_rotate():
            total += column.rotated
            counts[column.label] = column.rotated
            self.stdout.write(
                f"{column.label}: {column.rotated} re-encrypted, {column.current} already current, "
                f"{column.empty} empty"
            )
        # Lives in apps/audit (not core, below it) so that the rotation is audited like any other.
        audit_record(actor=None, actor_label="secrets_rotate command", action="secrets.rotate",
                     target=("secrets", "KEFU_SECRET_KEYS"), detail={"re_encrypted": counts, "total": total})
        self.stdout.write(f"{total} secret(s) re-encrypted with the first key")

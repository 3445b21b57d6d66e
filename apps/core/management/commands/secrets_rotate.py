from django.core.management.base import BaseCommand

from apps.core.fields import encrypted_columns_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key of KEFU_SECRET_KEYS (idempotent). "
        "Rotation: put a new key first, run this, then remove the old key."
    )

    def handle(self, *args, **options):
        total = 0
        for column in encrypted_columns_rotate():
            total += column.rotated
            self.stdout.write(
                f"{column.label}: {column.rotated} re-encrypted, {column.current} already current, "
                f"{column.empty} empty"
            )
        self.stdout.write(f"{total} secret(s) re-encrypted with the first key")

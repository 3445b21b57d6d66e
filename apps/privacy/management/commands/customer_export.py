"""`manage.py customer_export --customer ID`: print everything Kefu holds about a customer as
one JSON document (PROTOCOL.md §5). Audited."""

from __future__ import annotations

import getpass
import json

from django.core.management.base import BaseCommand, CommandError

from apps.privacy.services import CustomerUnknown, customer_export


class Command(BaseCommand):
    help = "Print one JSON document with everything Kefu holds about a customer."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--customer", required=True, help="The customer's Kefu id (a UUID).")

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        try:
            document = customer_export(
                customer_id=options["customer"], actor_label=f"command customer_export ({getpass.getuser()})"
            )
        except CustomerUnknown as exc:
            raise CommandError(f"{exc} Find it in the console (Customer id) or /admin/.") from None
        self.stdout.write(json.dumps(document, ensure_ascii=False, indent=2))

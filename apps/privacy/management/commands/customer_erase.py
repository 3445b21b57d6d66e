"""`manage.py customer_erase --customer ID [--yes]`: remove a customer's personal data
everywhere, keep their conversations as anonymous statistics (PROTOCOL.md §5). Audited; their
open chat sockets close. Asks for confirmation unless --yes."""

from __future__ import annotations

import getpass
import json

from django.core.management.base import BaseCommand, CommandError

from apps.privacy.services import CustomerUnknown, customer_erase


class Command(BaseCommand):
    help = "Erase a customer's personal data; their conversations stay as anonymous statistics."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--customer", required=True, help="The customer's Kefu id (a UUID).")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        customer_id = options["customer"]
        if not options["yes"]:
            answer = input(f"Erase customer {customer_id}'s personal data? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Nothing erased.")
        try:
            erased = customer_erase(
                customer_id=customer_id, actor_label=f"command customer_erase ({getpass.getuser()})"
            )
        except CustomerUnknown as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            json.dumps(
                {
                    "customer_id": erased.customer_id,
                    "erased": True,
                    "conversations": erased.conversations,
                    "placeholder_customer_id": erased.placeholder_id,
                }
            )
        )

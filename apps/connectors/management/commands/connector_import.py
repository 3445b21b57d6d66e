"""`manage.py connector_import --openapi FILE --connector SLUG [--operations ID,ID] [--base-url URL] --json`
(PROTOCOL.md §5)."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.audit.services import audit_record
from apps.connectors.models import Tool
from apps.connectors.openapi import OpenAPIError, document_load, import_plan
from apps.connectors.services import connector_tools_import
from apps.core.outbound import ALLOW_HINT, OutboundRefused, outbound_url_check


class Command(BaseCommand):
    help = "Create or update a connector's tools from an OpenAPI 3.x / Swagger 2.0 document."

    def add_arguments(self, parser):
        parser.add_argument("--openapi", required=True, type=Path, help="the document, JSON or YAML")
        parser.add_argument("--connector", required=True, help="the connector's slug (created if new)")
        parser.add_argument("--operations", default="", help="operationIds (or tool names), comma-separated")
        parser.add_argument(
            "--base-url", default=None, help="the system's URL (default: the document's server)"
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options):
        path: Path = options["openapi"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        wanted = {o.strip() for o in options["operations"].split(",") if o.strip()} or None
        try:
            plan = import_plan(document_load(path), operations=wanted)
        except OpenAPIError as exc:
            raise CommandError(str(exc)) from None
        if not (options["base_url"] or plan.base_url):
            raise CommandError("The document names no server; pass --base-url.")
        try:  # the outbound policy: an imported document must not point Kefu inwards
            outbound_url_check(options["base_url"] or plan.base_url)
        except OutboundRefused as exc:
            raise CommandError(f"{exc}. {ALLOW_HINT}") from None
        slug = options["connector"]
        with transaction.atomic():  # the import and its audit row commit together
            had = set(Tool.objects.filter(connector__slug=slug).values_list("name", flat=True))
            imported = connector_tools_import(slug=slug, plan=plan, base_url=options["base_url"])
            names = [t.name for t in plan.tools]
            audit_record(
                actor=None,
                actor_label="connector_import command",
                action="connectors.connector.import",
                target=imported.connector,
                detail={
                    "created": [n for n in names if n not in had],
                    "updated": [n for n in names if n in had],
                    "skipped": len(plan.skipped),
                    "base_url": imported.connector.base_url,
                },
            )
        report = {
            "connector": options["connector"],
            "tools": [
                {
                    "name": t.name,
                    "method": t.method,
                    "path": t.path,
                    "parameters": t.parameters,
                    "enabled": imported.enabled[t.name],
                    "bound": t.bound,
                }
                for t in plan.tools
            ],
            "skipped": plan.skipped,
        }
        if options["json"]:
            self.stdout.write(json.dumps(report))
        else:
            disabled = sum(not enabled for enabled in imported.enabled.values())
            self.stdout.write(
                f"{len(plan.tools)} tools imported into {options['connector']} ({disabled} disabled until "
                f"an admin reviews and enables them), {len(plan.skipped)} operations skipped"
            )
            for t in plan.tools:
                if t.bound:
                    bound = ", ".join(f"{k} <- {v}" for k, v in t.bound.items())
                    self.stdout.write(f"  {t.name}: bound to the verified customer: {bound}")
            for s in plan.skipped:
                self.stdout.write(f"  skipped {s['operation']}: {s['reason']}")

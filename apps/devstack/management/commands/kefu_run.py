"""`make run`: migrate, load the demo workspace, run Daphne and a Celery worker until Ctrl-C.

`make run` runs it through `python -m apps.devstack manage kefu_run`, which started the embedded
Postgres/Redis (if used) and holds their lease, so they stop after everything here has exited.
"""

import os
import shlex
import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from honcho.environ import parse_procfile
from honcho.manager import Manager

from apps.core.net import trusted_proxies
from apps.devstack.embedded.ports import port_is_free


class Command(BaseCommand):
    help = "Run the whole Kefu platform in the foreground (what `make run` does)."

    def handle(self, *args, **options):
        try:  # checked before anything starts: uvicorn would take a typo for a host name
            proxies = trusted_proxies(settings.TRUSTED_PROXIES)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        host, port = settings.HOST, settings.PORT
        if not port_is_free(port, host):
            raise CommandError(
                f"Port {port} on {host} is already in use. Stop whatever holds it, or choose another "
                f"port with the PORT variable, e.g. `PORT={port + 1} make run`."
            )
        self._demo_crm_port_choose()
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("database migrated")
        call_command("demo_setup")

        env = dict(os.environ, HOST=host, PORT=str(port), PYTHONUNBUFFERED="1",
                   WEB_CONCURRENCY=str(settings.WEB_CONCURRENCY),
                   CELERY_TASK_DEFAULT_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
                   DEMO_CRM_HOST=settings.DEMO_CRM_HOST, DEMO_CRM_PORT=str(settings.DEMO_CRM_PORT),
                   DEMO_CRM_TOKEN=settings.DEMO_CRM_TOKEN, DEMO_CRM_KEFU_URL=f"http://{host}:{port}",
                   DEMO_WEBHOOK_SECRET=settings.DEMO_WEBHOOK_SECRET, TRUSTED_PROXIES=proxies,
                   PATH=f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}")
        self._print_banner(host, port)

        manager = Manager()
        procfile = parse_procfile((settings.BASE_DIR / "Procfile").read_text())
        for name, command in procfile.processes.items():
            manager.add_process(name, command, env=env, cwd=str(settings.BASE_DIR))
        manager.loop()
        self.stdout.write("all processes stopped; stopping embedded services that nothing else uses")
        # Ctrl-C (130) and SIGTERM (143) are the normal ways to stop: not an error.
        sys.exit(0 if manager.returncode in (None, 0, 130, 143) else manager.returncode)

    def _demo_crm_port_choose(self) -> None:
        """The demo CRM/ERP's port: DEMO_CRM_PORT, or a free one when the default is taken (honcho
        would stop everything if it could not listen); demo_setup then points `demo-crm` at it."""
        from apps.devstack.embedded.ports import free_port

        host, crm_port = settings.DEMO_CRM_HOST, settings.DEMO_CRM_PORT
        if port_is_free(crm_port, host):
            return
        if "DEMO_CRM_PORT" in os.environ:
            raise CommandError(f"Port {crm_port} on {host} (DEMO_CRM_PORT, the demo CRM/ERP) is already in "
                               "use. Stop whatever holds it, or choose another port with DEMO_CRM_PORT.")
        settings.DEMO_CRM_PORT = free_port()
        if "DEMO_CRM_URL" not in os.environ:
            settings.DEMO_CRM_URL = f"http://{host}:{settings.DEMO_CRM_PORT}"

    def _print_banner(self, host: str, port: int) -> None:
        base = f"http://{host}:{port}"
        lines = [
            "",
            "Kefu is starting:",
            f"  widget demo    {base}/",
            f"  agent console  {base}/console/   (reports: {base}/console/reports/)",
            f"  admin          {base}/admin/",
            f"  health         {base}/healthz",
            f"  demo CRM/ERP   http://{settings.DEMO_CRM_HOST}:{settings.DEMO_CRM_PORT}",
            f"  demo login     {settings.DEMO_AGENT_EMAIL} / {settings.DEMO_AGENT_PASSWORD}",
            f"  WIDGET_IDENTITY_SECRET={shlex.quote(settings.WIDGET_IDENTITY_SECRET)}",
            f"  WIDGET_JWT_SECRET={shlex.quote(settings.WIDGET_JWT_SECRET)}",
            f"  DEMO_WEBHOOK_SECRET={shlex.quote(settings.DEMO_WEBHOOK_SECRET)}",
            f"  data under     {settings.KEFU_VAR_DIR}",
            "Press Ctrl-C to stop everything.",
            "",
        ]
        self.stdout.write("\n".join(lines))

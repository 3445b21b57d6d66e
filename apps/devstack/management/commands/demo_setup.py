from django.core.management.base import BaseCommand

from apps.devstack.demo import demo_workspace_setup


class Command(BaseCommand):
    help = "Create or update the demo workspace (agent login, knowledge base, demo customers). Idempotent."

    def handle(self, *args, **options):
        workspace = demo_workspace_setup()
        verb = "created" if workspace.agent_created else "up to date"
        self.stdout.write(f"demo agent {workspace.agent_email}: {verb}")
        self.stdout.write(f"demo customers: {', '.join(workspace.customers)}")
        self.stdout.write(
            f"demo knowledge base {workspace.knowledge_base}: "
            f"{workspace.documents} articles, {workspace.chunks} chunks"
        )

#!/usr/bin/env python
"""Django's command-line utility for Kefu."""
import os
import sys


def main() -> None:
    # Production unless told otherwise, as config.asgi and config.celery: development commands run
    # through `python -m apps.devstack manage ...` (or `make manage ARGS=...`), which sets its own.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

"""The development stack: embedded PostgreSQL/Redis, `make run`'s supervisor and the demo data.

The top layer: nothing in apps/ or config/ imports it. Development entry points (`make run`,
`make test`'s pytest plugin, `python -m apps.devstack manage ...`) start or attach to the
embedded services here and pass their URLs to Django through the environment, so settings
only ever read variables.
"""

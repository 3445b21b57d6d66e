"""The reports at scale: /console/reports/ and GET /api/reports/summary over N conversations,
beside a plain `SELECT COUNT(*)` over the same conversations in the same run.

    .venv/bin/python bench/reports.py [--conversations 1000000] [--days 365] [--requests 100]

Seeds N conversations with their messages (and message and handoff events, feedback, SLA
clocks) into a database of its own on the development Postgres (embedded unless DATABASE_URL is
set): `kefu_bench_reports` for 1,000,000, `kefu_bench_reports_<N>` for other sizes. Rows are
generated inside Postgres (INSERT ... SELECT over generate_series, 100,000 conversations a
transaction; about 3 minutes for 1,000,000 here) and kept between runs:
a marker row (table bench_reports_seed) records what was seeded, and a run asking for the same
--conversations and --days seeds nothing (--reseed starts over; --rebuild rebuilds the rollups).
Histories are spread over the last --days days: 55 % answered by the assistant (most closed,
half of those rated), 25 % answered then handed to one of 12 agents in
4 teams (claimed, replied to, closed, rated, two SLA clocks, 10 % breached), 10 % handed over at
once, 10 % a lone customer message. Then the rollups are built (`rollups_rebuild`, timed), a real
uvicorn serves the page (a supervisor's session) and the JSON (REPORTS_TOKEN) for the last 30
days, and each is requested --requests times after warming up; COUNT(*) runs as often over the
conversations started in the same 30 days and over all of them. Prints a table (with the load
average: the machine may be shared) and writes bench/results/reports.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from _harness import child_env, process_stop, results_write, table_print, uvicorn_start  # noqa: E402

DB = "kefu_bench_reports"
TOKEN = "bench-reports-token"


def setup(db: str) -> dict[str, str]:
    """Django on the bench database (created and migrated when missing); the child's environment."""
    from apps.devstack.environment import environment_prepare

    environment_prepare(settings_module="config.settings.base")
    import django
    import psycopg
    from django.conf import settings

    django.setup()
    base = dict(settings.DATABASES["default"])
    admin = psycopg.connect(
        host=base["HOST"],
        port=base["PORT"],
        user=base["USER"],
        password=base.get("PASSWORD") or None,
        dbname=base["NAME"],
        autocommit=True,
    )
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone():
        admin.execute(f'CREATE DATABASE "{db}"')
    admin.close()
    settings.DATABASES["default"]["NAME"] = db
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    password = f":{base['PASSWORD']}" if base.get("PASSWORD") else ""
    return {
        "DATABASE_URL": f"postgres://{base['USER']}{password}@{base['HOST']}:{base['PORT']}/{db}",
        "REDIS_URL": settings.REDIS_URL,
        "KEFU_REDIS_PREFIX": f"kefu-bench-reports-{os.getpid()}",
        "REPORTS_TOKEN": TOKEN,
    }


# -- seeding -------------------------------------------------------------------------------------
# Everything is generated inside Postgres, a chunk of conversations per statement group: a temp
# table holds each conversation's drawn attributes, and one INSERT ... SELECT per table turns them
# into rows. Draws are hashes of (conversation number, salt), so a seed is repeatable apart from
# its anchor, the time it ran. FK triggers are off while loading (session_replication_role, the
# embedded server's superuser): the rows reference each other by construction.

MARKER = "bench_reports_seed"
GENERATOR = "sql-v1"  # bump when the shape of the histories changes: the next run reseeds
CHUNK = 100_000


def rnd(salt: int) -> str:
    """A uniform draw in [0, 1) for conversation `i`, fixed by `salt`."""
    return f"(((hashint8extended(i, {salt}) >> 11) & 4503599627370495)::float8 / 4503599627370496.0)"


# Each conversation's attributes (see the module docstring for the mix).
_DRAW = f"""
CREATE TEMP TABLE seed_c AS
WITH d AS (
  SELECT i, {rnd(1)} AS k,
         %(now)s::timestamptz - make_interval(secs => {rnd(2)} * %(span)s) AS s0,
         -- the hour of the day: normal around 13:00, sd 4 h (Box-Muller)
         least(23, greatest(0, floor(13 + 4 * sqrt(-2 * ln(1 - {rnd(3)}))
                                          * cos(2 * pi() * {rnd(4)}))))::int AS h,
         floor({rnd(5)} * 12)::int + 1 AS a, floor({rnd(5)} * 4)::int + 1 AS tm,
         {rnd(6)} AS r6, {rnd(7)} AS r7, {rnd(8)} AS r8, {rnd(9)} AS r9, {rnd(10)} AS r10,
         {rnd(11)} AS r11, {rnd(12)} AS r12, {rnd(13)} AS r13, {rnd(14)} AS r14, {rnd(15)} AS r15
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
), t AS (
  SELECT d.*, date_trunc('day', s0) + make_interval(hours => h) + (s0 - date_trunc('hour', s0)) AS s1
    FROM d
), u AS (
  SELECT t.*, CASE WHEN s1 > %(now)s THEN s1 - interval '1 day' ELSE s1 END AS start,
         k < 0.80 AS answered, k >= 0.55 AND k < 0.90 AS handed_over,
         (floor(-900 * ln(1 - r8)) + 20)::int AS frt_s
    FROM t
), v AS (
  SELECT u.*,
         CASE WHEN handed_over THEN start + make_interval(mins => 1 + floor(r7 * 5)::int) END AS handed
    FROM u
), w AS (
  SELECT v.*,
         CASE WHEN k < 0.55 AND r9 < 0.6 THEN start + make_interval(mins => 2 + floor(r10 * 39)::int)
              WHEN handed_over THEN handed + make_interval(secs => frt_s, mins => 5 + floor(r10 * 116)::int)
         END AS closed_raw
    FROM v
)
SELECT i, md5('conv' || i)::uuid AS conv, md5('cust' || i)::uuid AS cust, start,
       CASE WHEN k >= 0.55 THEN (%(agent_teams)s::bigint[])[a] ELSE (%(teams)s::bigint[])[tm] END AS team,
       CASE WHEN k >= 0.55 THEN (%(agents)s::int[])[a] END AS agent,
       answered, handed_over, frt_s, handed, r11 < 0.10 AS breached,
       CASE WHEN answered THEN start + make_interval(secs => 2 + floor(r6 * 19)::int) END AS answer_at,
       CASE WHEN closed_raw <= %(now)s THEN closed_raw END AS closed, closed_raw,
       CASE WHEN closed_raw IS NOT NULL AND r12 < 0.5 THEN
         CASE WHEN r13 * 14 < 1 THEN 1 WHEN r13 * 14 < 2 THEN 2 WHEN r13 * 14 < 4 THEN 3
              WHEN r13 * 14 < 8 THEN 4 ELSE 5 END END::smallint AS csat,
       answered AND r14 < 0.2 AS rated, r15 < 0.7 AS helpful,
       -- seqs: the customer's message 1, the answer 2, then the handoffs and the agent's exchange
       CASE WHEN answered THEN 2 ELSE 1 END AS hs,
       CASE WHEN handed_over THEN 4 ELSE 0 END + CASE WHEN answered THEN 2 ELSE 1 END AS last_seq
  FROM w
"""

# One statement per table; {extra} adds the NOT NULL columns other apps may have added.
_FILL = {
    "customers_customer": (
        "id, name, email, created_at, updated_at",
        "SELECT cust, 'Customer ' || i, 'c' || i || '@bench.example', start, start{extra} FROM seed_c",
    ),
    "conversations_conversation": (
        "id, customer_id, state, assignee_id, team_id, priority, last_seq, csat_score, csat_comment, "
        "created_at, updated_at, closed_at",
        "SELECT conv, cust, CASE WHEN closed IS NOT NULL THEN 'closed' WHEN agent IS NOT NULL THEN 'human' "
        "ELSE 'bot' END, agent, team, 'normal', last_seq, csat, '', start, start, closed{extra} FROM seed_c",
    ),
    "conversations_message": (
        "id, conversation_id, role, text, citations, author_id, stopped, seq, outcome, suggestions, "
        "created_at",
        "SELECT md5('msg' || i || '.' || m.seq)::uuid, conv, m.role, '…', '[]', m.author, false, m.seq, "
        "m.outcome, '[]', m.at{extra} FROM seed_c CROSS JOIN LATERAL (VALUES "
        "  ('customer', 1, NULL::int, '', start, true),"
        "  ('assistant', 2, NULL, 'answered', answer_at, answered),"
        "  ('agent', hs + 3, agent, '', handed + make_interval(secs => frt_s), handed_over),"
        "  ('customer', hs + 4, NULL, '', handed + make_interval(secs => frt_s, mins => 2), handed_over)"
        ") AS m(role, seq, author, outcome, at, present) WHERE m.present",
    ),
    "conversations_conversationevent": (
        "conversation_id, seq, type, payload, created_at",
        "SELECT conv, e.seq, e.type, e.payload::jsonb, e.at{extra} FROM seed_c CROSS JOIN LATERAL (VALUES "
        "  (1, 'message', '{{\"message\": {{}}}}', start, true),"
        "  (2, 'message', '{{\"message\": {{}}}}', answer_at, answered),"
        "  (hs + 1, 'handoff', '{{\"state\": \"waiting\", \"agent\": null}}', handed, handed_over),"
        "  (hs + 2, 'handoff', '{{\"state\": \"human\", \"agent\": null}}',"
        "   handed + make_interval(secs => frt_s - 10), handed_over),"
        "  (hs + 3, 'message', '{{\"message\": {{}}}}', handed + make_interval(secs => frt_s), handed_over),"
        "  (hs + 4, 'message', '{{\"message\": {{}}}}', handed + make_interval(secs => frt_s, mins => 2),"
        "   handed_over)"
        ") AS e(seq, type, payload, at, present) WHERE e.present",
    ),
    "conversations_messagefeedback": (
        "message_id, helpful, comment, created_at, updated_at",
        "SELECT md5('msg' || i || '.2')::uuid, helpful, '', start, start{extra} FROM seed_c WHERE rated",
    ),
    "sla_slaclock": (
        "conversation_id, kind, due_at, started_at, stopped_at, breached_at",
        "SELECT conv, c.kind, c.due, handed, c.stopped, c.breached{extra} FROM seed_c "
        "CROSS JOIN LATERAL (VALUES "
        "  ('first_response', handed + interval '1 hour', handed + make_interval(secs => frt_s),"
        "   CASE WHEN breached THEN handed + interval '1 hour' END),"
        "  ('resolution', handed + interval '8 hours', closed_raw, NULL::timestamptz)"
        ") AS c(kind, due, stopped, breached) WHERE handed_over",
    ),
}
_FILLER_SQL = {
    "text": "''", "character varying": "''", "integer": "0", "bigint": "0", "smallint": "0",
    "boolean": "false", "jsonb": "'{}'::jsonb", "timestamp with time zone": "start",
    "ARRAY": "'{}'",  # an empty array of any element type (e.g. Customer.message_hits)
}


def _extra_columns(cursor, table: str, given: str) -> tuple[str, str]:
    """The NOT NULL columns without a default that other apps may have added: (names, values)."""
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
        "AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'",
        [table],
    )
    named = {c.strip() for c in given.split(",")}
    extra = [(name, kind) for name, kind in cursor.fetchall() if name not in named]
    return ("".join(f", {name}" for name, _ in extra),
            "".join(f", {_FILLER_SQL.get(kind, chr(39) * 2)}" for _, kind in extra))


def seed_people() -> tuple[list[int], list[tuple[int, int]]]:
    """The supervisor the page is read as, 4 teams of 3 agents: (team ids, (team, agent) pairs)."""
    from django.contrib.auth import get_user_model

    from apps.console.roles import role_join
    from apps.teams.models import Team

    users = get_user_model()
    sue = users.objects.create_user(username="sue@bench", password="pw", first_name="Sue", is_staff=True)
    role_join(user=sue, role="supervisor")
    teams, agents = [], []
    for t in range(4):
        team = Team.objects.create(name=f"Team {t}", slug=f"team-{t}")
        teams.append(team.pk)
        for a in range(3):
            user = users.objects.create_user(
                username=f"agent{t}{a}@bench", password="pw", is_staff=True, first_name=f"Agent {t}{a}"
            )
            team.members.add(user)
            agents.append((team.pk, user.pk))
    return teams, agents


def seed(n: int, days: int) -> dict[str, int]:
    """N conversations and their rows, generated in Postgres; returns the rows per table."""
    from django.db import connection, transaction

    teams, agents = seed_people()
    counts = dict.fromkeys(_FILL, 0)
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        statements = {}
        for table, (columns, select) in _FILL.items():
            names, values = _extra_columns(cursor, table, columns)
            statements[table] = f"INSERT INTO {table} ({columns}{names}) " + select.format(extra=values)
        cursor.execute("SET session_replication_role = replica")  # no FK triggers: consistent by construction
        for lo in range(1, n + 1, CHUNK):
            hi = min(n, lo + CHUNK - 1)
            with transaction.atomic():
                cursor.execute(_DRAW, {
                    "lo": lo, "hi": hi, "now": now, "span": days * 86400, "teams": teams,
                    "agents": [a for _, a in agents], "agent_teams": [t for t, _ in agents],
                })
                for table, sql in statements.items():
                    cursor.execute(sql)
                    counts[table] += cursor.rowcount
                cursor.execute("DROP TABLE seed_c")
            print(f"  seeded conversations {lo:,}-{hi:,}", flush=True)
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("ANALYZE")
    return counts


def seed_marker(cursor) -> dict | None:
    """What an earlier run seeded here (None: nothing complete)."""
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {MARKER} (conversations int, days int, generator text, counts jsonb, "
        "seconds float8, seeded_at timestamptz)"
    )
    cursor.execute(f"SELECT conversations, days, generator, counts, seconds, seeded_at FROM {MARKER}")
    row = cursor.fetchone()
    keys = ("conversations", "days", "generator", "counts", "seconds", "seeded_at")
    if not row:
        return None
    marker = dict(zip(keys, row, strict=True))
    if isinstance(marker["counts"], str):  # Django's cursor hands jsonb over as text
        marker["counts"] = json.loads(marker["counts"])
    return marker


# -- measuring -----------------------------------------------------------------------------------


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))], 1)


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--db", default=None, help=f"default {DB} (at 1,000,000; else {DB}_<N>)")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the rollups of a kept seed")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    args.db = args.db or (DB if args.conversations == 1_000_000 else f"{DB}_{args.conversations}")
    env = setup(args.db)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the table
    import httpx
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from apps.reports.facts import rollups_rebuild
    from apps.reports.models import ConversationFact

    with connection.cursor() as cursor:
        marker = seed_marker(cursor)
    wanted = {"conversations": args.conversations, "days": args.days, "generator": GENERATOR}
    seeded, seed_s = None, None
    if args.reseed or not marker or any(marker[k] != v for k, v in wanted.items()):
        with connection.cursor() as cursor:
            cursor.execute(
                f"TRUNCATE {MARKER}, customers_customer, conversations_conversation, "
                "reports_conversationfact, reports_hourlyrollup, teams_team CASCADE"
            )
        get_user_model().objects.filter(username__endswith="@bench").delete()
        print(f"seeding {args.conversations:,} conversations ({args.days} days) into {args.db}", flush=True)
        started = time.monotonic()
        seeded = seed(args.conversations, args.days)
        seed_s = round(time.monotonic() - started, 1)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {MARKER} VALUES (%s, %s, %s, %s, %s, now())",
                [args.conversations, args.days, GENERATOR, json.dumps(seeded), seed_s],
            )
        marker = {**wanted, "counts": seeded, "seconds": seed_s, "seeded_at": datetime.now(UTC)}
        print(f"seeded {seeded} in {seed_s} s")
    else:
        print(f"kept the seed of {marker['seeded_at']:%Y-%m-%d %H:%M} in {args.db}: {marker['counts']} "
              f"(it took {marker['seconds']} s)")
    rebuild_s, rebuilt = None, None
    if seeded or args.rebuild or ConversationFact.objects.count() != args.conversations:
        started = time.monotonic()
        rebuilt = rollups_rebuild()
        rebuild_s = round(time.monotonic() - started, 1)
        with connection.cursor() as cursor:
            # As autovacuum would soon: the visibility map lets the percentiles scan indexes only.
            cursor.execute("VACUUM (ANALYZE) reports_conversationfact, reports_hourlyrollup")
        print(f"built the rollups ({rebuilt}) in {rebuild_s} s")

    sue = get_user_model().objects.get(username="sue@bench")
    client = Client()
    client.force_login(sue)
    cookie = client.cookies["sessionid"].value
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "bench-reports-uvicorn.log"
    proc, port = uvicorn_start(child_env(env), log)
    now = datetime.now(UTC)
    since = now - timedelta(days=30)
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        page = lambda: _ok(http.get("/console/reports/?period=30d", cookies={"sessionid": cookie}))  # noqa: E731
        api = lambda: _ok(  # noqa: E731
            http.get(
                "/api/reports/summary",
                params={
                    "since": since.isoformat(),
                    "until": now.isoformat(),
                },
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        )
        for _ in range(5):
            page(), api()
        page_ms, api_ms = timed(page, args.requests), timed(api, args.requests)
        summary = http.get(
            "/api/reports/summary",
            params={"since": since.isoformat(), "until": now.isoformat()},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).json()
    finally:
        process_stop(proc)

    def count(where: str = "", params=()) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM conversations_conversation {where}", params)
            cursor.fetchone()

    count_30 = timed(lambda: count("WHERE created_at >= %s AND created_at < %s", [since, now]), args.requests)
    count_all = timed(count, max(5, args.requests // 10))
    rows = [
        ["reports page (30 days)", args.requests, pct(page_ms, 0.5), pct(page_ms, 0.95), 300],
        ["JSON summary (30 days)", args.requests, pct(api_ms, 0.5), pct(api_ms, 0.95), 150],
        ["COUNT(*) started in 30 days", args.requests, pct(count_30, 0.5), pct(count_30, 0.95), "-"],
        ["COUNT(*) all conversations", len(count_all), pct(count_all, 0.5), pct(count_all, 0.95), "-"],
    ]
    load = [round(x, 2) for x in os.getloadavg()]  # a shared machine: the figures move with it
    print()
    table_print(["what", "n", "p50 ms", "p95 ms", "target p95 ms"], rows)
    print(f"load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} CPUs")
    print(
        f"\n30-day window: {summary['conversations']} conversations, AI resolution rate "
        f"{summary['ai_resolution_rate']}, FRT p50/p90 {summary['first_response_s']}"
    )
    results_write(
        "reports",
        {
            "conversations": args.conversations,
            "days": args.days,
            "requests": args.requests,
            "seeded": seeded,
            "seed_s": seed_s,
            "rollups": rebuilt,
            "rebuild_s": rebuild_s,
            "window_30d": summary,
            "ms": {row[0]: {"p50": row[2], "p95": row[3]} for row in rows},
            "seed_kept_from": None if seeded else {**marker, "seeded_at": marker["seeded_at"].isoformat()},
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": load},
        },
        args.out,
    )


def _ok(response) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url} answered {response.status_code}: {response.text[:200]}")


if __name__ == "__main__":
    main()

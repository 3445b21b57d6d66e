"""/console/reports/ in headless Chromium as a supervisor, over a week of demo-like history:
the charts are drawn, and a table downloads as CSV. The screenshot is kept in the test's tmp dir
(and copied to KEFU_SCREENS_DIR when that is set)."""

from __future__ import annotations

import csv
import io
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.console.roles import role_join
from apps.teams.models import Team
from tests.support.browser import beside_playwright, console_sign_in, screenshot
from tests.support.people import make_user

from .history import Step, Story, build

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def seed_week() -> int:
    """Three or four conversations a day for a week: answered and closed, idle, handed over."""
    sue = make_user("sue@example.com", "Sue", "Supervisor")
    role_join(user=sue, role="supervisor")
    alice = make_user("alice@example.com", "Alice", "Agent")
    billing = Team.objects.create(name="Billing", slug="billing")
    billing.members.add(alice)
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    count = 0
    for day in range(6, -1, -1):
        start = midnight - timedelta(days=day)
        stories = [
            Story(
                [Step(0, "customer"), Step(1, "assistant"), Step(6, "close")],
                start=start + timedelta(hours=9),
                team=billing,
                csat=5 if day % 2 else 4,
                feedback=[True],
            ),
            Story(
                [Step(0, "customer"), Step(1, "assistant")], start=start + timedelta(hours=10), team=billing
            ),
            Story(
                [
                    Step(0, "customer"),
                    Step(1, "assistant"),
                    Step(2, "human"),
                    Step(3 + day * 7, "claim", alice),
                    Step(4 + day * 7, "agent", alice),
                    Step(50, "close"),
                ],
                start=start + timedelta(hours=14),
                team=billing,
                csat=2 + day % 3,
                feedback=[False],
                sla_breached=day == 3,
            ),
        ]
        if day % 2 == 0:
            stories.append(
                Story(
                    [
                        Step(0, "customer"),
                        Step(1, "human"),
                        Step(90, "claim", alice),
                        Step(95, "agent", alice),
                    ],
                    start=start + timedelta(hours=15),
                    team=billing,
                )
            )
        for story in stories:
            if story.start + timedelta(minutes=max(s.at for s in story.steps)) < timezone.now():
                build(story)
                count += 1
    return count


def test_a_supervisor_sees_the_charts_and_downloads_a_table(web_server, page, tmp_path) -> None:
    seeded = beside_playwright(seed_week)
    server = web_server()
    page.goto(f"{server.http_url}/console/reports/")
    console_sign_in(page, "sue@example.com")
    expect(page).to_have_url(f"{server.http_url}/console/reports/")

    figure = page.locator(".kf-rp-figure").first
    expect(figure.locator("strong")).to_have_text(str(seeded))
    for chart in ("volume", "frt", "csat", "hours"):
        canvas = page.locator(f"#chart-{chart}")
        expect(canvas).to_have_attribute("data-drawn", "true")
        # Something was painted: some pixel of the canvas is not transparent.
        painted = canvas.evaluate(
            "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " for (let i = 3; i < d.length; i += 4) if (d[i]) return true; return false; }"
        )
        assert painted, f"chart {chart} is blank"
    expect(page.locator("#table-daily tbody tr")).to_have_count(7)

    path = tmp_path / "reports.png"
    page.screenshot(path=str(path), full_page=True)
    if target := os.environ.get("KEFU_SCREENS_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)

    with page.expect_download() as download_info:
        page.locator("#table-daily").get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("kefu-daily-")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
    assert rows[0][:2] == ["Day", "Conversations"]
    assert sum(int(row[1]) for row in rows[1:]) == seeded


def demo_supervisor() -> None:
    """A fresh demo workspace's lead: no conversation yet (the demo creates none)."""
    sue = make_user("sue@example.com", "Sue", "Supervisor")
    role_join(user=sue, role="supervisor")


def test_a_fresh_workspace_shows_empty_reports_not_errors(web_server, page, tmp_path) -> None:
    beside_playwright(demo_supervisor)
    server = web_server()
    page.goto(f"{server.http_url}/console/reports/")
    console_sign_in(page, "sue@example.com")
    expect(page).to_have_url(f"{server.http_url}/console/reports/")
    expect(page.locator(".kf-rp-figure").first.locator("strong")).to_have_text("0")
    for chart in ("volume", "frt", "csat", "hours"):
        expect(page.locator(f"#chart-{chart}")).to_have_attribute("data-drawn", "true")
    screenshot(page, tmp_path, "reports-empty", full_page=True)
    with page.expect_download() as download_info:
        page.locator("#table-daily").get_by_role("link", name="Download CSV").click()
    rows = list(csv.reader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert rows[0][:2] == ["Day", "Conversations"] and all(row[1] == "0" for row in rows[1:])

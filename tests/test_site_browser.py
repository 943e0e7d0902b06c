"""The site in a real headless Chromium (Debian's, via Playwright; no browser download).

Runs are real: `gitflowd run` in a subprocess on a real Git repository; the pages are the
ones its site listener wrote. Screenshots of every page type go to test-output/screenshots/.
A missing browser skips these tests, unless GITFLOWD_REQUIRE_BROWSER=1 (CI) makes it fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import GIT_ENV
from gitflowd.registry import record_snapshot
from gitflowd.repo import Repo
from gitflowd.site import Site

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"

PIPELINE = '''[dag]
description = "Forecast umbrella demand from sales and weather"
schedule = "@daily"

[tasks.fetch_sales]
cmd = "echo fetched sales for {{ ds }}"

[tasks.fetch_weather]
cmd = "echo fetched weather"

[tasks.clean_sales]
cmd = "echo cleaning"
deps = ["fetch_sales"]

[tasks.join]
cmd = "echo joining; echo 'no weather rows' >&2; exit 3"
deps = ["clean_sales", "fetch_weather"]

[tasks.report]
cmd = "echo report"
deps = ["join"]
'''
EVIL = '<script>window.__pwned=1;alert(1)</script>"onmouseover="window.__pwned=2" <img src=x onerror=window.__pwned=3>'


def _missing(reason: str):
    if os.environ.get("GITFLOWD_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (GITFLOWD_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        _missing(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.add_init_script("window.__pwned = 0")
    yield page
    context.close()


def gitflowd(*args: str, cwd: Path, check_rc: int | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "gitflowd", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env={**os.environ, **GIT_ENV})
    if check_rc is not None:
        assert done.returncode == check_rc, done.stdout + done.stderr
    return done


def record(repo_path: Path, state: Path) -> None:
    """What the daemon does on every commit: load it and record it in the registry."""
    with Repo(repo_path) as repo:
        record_snapshot(state, repo.load(repo.resolve()))


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def no_injection(page) -> None:
    assert page.evaluate("window.__pwned") == 0, page.url
    assert page.dialogs == [], page.url
    handlers = page.evaluate("""() => [...document.querySelectorAll('*')].flatMap(
        el => [...el.attributes].filter(a => a.name.startsWith('on')).map(a => el.tagName + ' ' + a.name))""")
    assert handlers == [], page.url
    assert page.evaluate("document.scripts.length") == 0


@pytest.fixture
def failed_run(make_repo, tmp_path):
    repo = make_repo({"dags/umbrella.toml": PIPELINE})
    state, site = repo.path / ".gitflowd/state", repo.path / ".gitflowd/site"
    record(repo.path, state)
    done = gitflowd("run", "umbrella", cwd=repo.path, check_rc=1)
    return repo, state, site, done.stdout.splitlines()[0]


def test_follow_links_from_index_to_dag_run_and_log(page, failed_run):
    repo, state, site, run_id = failed_run
    page.goto((site / "index.html").as_uri())
    no_injection(page)
    assert page.locator('tr[data-dag="umbrella"]').count() == 1
    assert page.locator(f'tr[data-dag="umbrella"] [data-run="{run_id}"]').get_attribute("data-state") == "failed"
    shoot(page, "index")

    page.click('a:text-is("umbrella")')
    assert page.url.endswith("/dags/umbrella/index.html")
    cells = {c.get_attribute("data-task"): c.get_attribute("data-state")
             for c in page.locator(f'table.grid td [data-run="{run_id}"]').all()}
    assert cells == {"fetch_sales": "success", "fetch_weather": "success", "clean_sales": "success",
                     "join": "failed", "report": "upstream_failed"}
    assert page.locator('svg g.node[data-task="join"]').get_attribute("data-state") == "failed"
    assert page.locator("#source pre").inner_text().startswith("[dag]")
    shoot(page, "dag")

    page.click(f'table.grid thead a.sq[data-run="{run_id}"]')
    assert page.url.endswith(f"/runs/{run_id}/index.html")
    rows = {r.get_attribute("data-task"): r.get_attribute("data-state") for r in page.locator("#tasks tr[data-task]").all()}
    assert rows == cells
    assert page.locator("#gantt svg rect.bar").count() == 4  # report never started
    assert "add pipeline" not in page.content() and "initial" in page.locator(".facts").inner_text()  # commit subject
    shoot(page, "run")

    page.click('#tasks tr[data-task="join"] .attempts a')
    assert page.url.endswith(f"/runs/{run_id}/join.1.html")
    log_text = page.locator("pre.log").inner_text()
    assert "joining" in log_text and "no weather rows" in log_text
    assert page.locator("h1[data-task]").get_attribute("data-state") == "failed"
    shoot(page, "log")

    page.emulate_media(color_scheme="dark")
    page.go_back()
    page.go_back()
    shoot(page, "dag-dark")
    no_injection(page)


def test_injected_markup_never_runs(page, make_repo, tmp_path):
    evil_toml = (f"[dag]\ndescription = '''{EVIL}'''\n\n"
                 f"[tasks.shout]\ncmd = '''echo '{EVIL}'; exit 1'''\n")
    repo = make_repo()
    repo.commit({"dags/evil.toml": evil_toml}, message=f"evil {EVIL}")
    state, site = repo.path / ".gitflowd/state", repo.path / ".gitflowd/site"
    record(repo.path, state)
    assert gitflowd("run", "evil", cwd=repo.path, check_rc=1).stdout.startswith("manual__")
    done = gitflowd("render", cwd=repo.path, check_rc=0)
    pages = sorted(Path(site).rglob("*.html"))
    assert len(pages) >= 4
    for html in pages:
        page.goto(html.as_uri())
        for element in page.locator("[title], td, h1, pre, code").all()[:40]:
            element.hover(force=True, timeout=2000)
        no_injection(page)
    page.goto(Path(done.stdout.strip()).as_uri())
    assert "<script>" in page.locator(".desc").inner_text()  # shown as text, not run
    shoot(page, "escaped-index")


def test_a_watched_run_page_goes_green_and_stops_refreshing(page, make_repo, tmp_path):
    release = tmp_path / "release"  # the task runs until the test has seen it running: no race
    slow = (f'[dag]\n\n[tasks.wait]\ncmd = "for i in $(seq 1200); do [ -f {release} ] && exit 0; sleep 0.05; done; exit 1"\n\n'
            '[tasks.after]\ncmd = "echo done"\ndeps = ["wait"]\n')
    repo = make_repo({"dags/slow.toml": slow})
    site = repo.path / ".gitflowd/site"
    proc = subprocess.Popen([sys.executable, "-m", "gitflowd", "run", "slow"], cwd=repo.path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **GIT_ENV})
    try:
        run_id = proc.stdout.readline().strip()
        run_page = site / f"dags/slow/runs/{run_id}/index.html"
        deadline = time.monotonic() + 60
        while not (run_page.is_file() and 'data-task="wait" data-state="running"' in run_page.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, "the run page never showed the running task"
            time.sleep(0.05)
        page.goto(run_page.as_uri())
        assert page.locator('meta[http-equiv="refresh"]').count() == 1
        assert page.locator('#tasks tr[data-task="wait"]').get_attribute("data-state") == "running"
        shoot(page, "run-live")
        release.touch()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    page.reload()
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    states = {r.get_attribute("data-task"): r.get_attribute("data-state") for r in page.locator("#tasks tr[data-task]").all()}
    assert states == {"wait": "success", "after": "success"}


def test_a_resumed_run_page_keeps_its_attempts_apart_and_its_labels_inside_the_chart(page, make_repo, tmp_path):
    flag = tmp_path / "fixed"  # two silent failures ("no output"), then a resume at the very end of the chart
    repo = make_repo({"dags/retry.toml": f'[tasks.check]\ncmd = "test -f {flag}"\nretries = 1\n\n'
                                         '[tasks.slow]\ncmd = "sleep 2"\n'})
    run_id = gitflowd("run", "retry", cwd=repo.path, check_rc=1).stdout.splitlines()[0]
    flag.touch()
    gitflowd("resume", "retry", run_id, cwd=repo.path, check_rc=0)  # runs `check` only: a few ms after the mark
    page.goto((repo.path / f".gitflowd/site/dags/retry/runs/{run_id}/index.html").as_uri())
    boxes = [item.bounding_box() for item in page.locator('#tasks tr[data-task="check"] .attempts > *').all()]
    assert len(boxes) == 3
    for left, right in zip(boxes, boxes[1:]):
        if abs(left["y"] - right["y"]) < 2:  # on one line: a gap between them, as between linked attempts
            assert right["x"] - (left["x"] + left["width"]) >= 4, boxes
    chart = page.locator("#gantt svg").bounding_box()
    for text in page.locator("#gantt svg text").all():
        box = text.bounding_box()
        assert chart["x"] <= box["x"] and box["x"] + box["width"] <= chart["x"] + chart["width"], (text.text_content(), box, chart)
    shoot(page, "run-resumed")


def test_versions_read_in_load_order_after_a_move_and_a_reset(page, make_repo, tmp_path):
    """The Versions table's only time was the commit's, so after a reset an older 'added' sat
    above a newer 'removed'; a `git mv` was not in it at all."""
    repo = make_repo({"dags/c.toml": '[tasks.a]\ncmd = "echo a"\n'})
    state, site = tmp_path / "state", tmp_path / "site"
    record(repo.path, state)
    (repo.path / "dags/sub").mkdir()
    subprocess.run(["git", "mv", "dags/c.toml", "dags/sub/c.toml"], cwd=repo.path, check=True, capture_output=True)
    moved = repo.commit(message="move c")
    record(repo.path, state)
    repo.commit(remove=("dags/sub/c.toml",), message="drop c")
    record(repo.path, state)
    subprocess.run(["git", "reset", "-q", "--hard", "HEAD~1"], cwd=repo.path, check=True)
    record(repo.path, state)
    Site(state, site).render_all()
    page.goto((site / "dags/c/index.html").as_uri())
    assert page.locator("#versions th").all_inner_texts()[:1] == ["LOADED"]  # upper-cased by the style
    assert [r.get_attribute("data-change") for r in page.locator("#versions tr[data-change]").all()] == [
        "added", "removed", "moved", "added"]
    moved_row = page.locator('#versions tr[data-change="moved"]').inner_text()
    assert "from dags/c.toml to dags/sub/c.toml" in moved_row and moved[:8] in moved_row
    assert page.locator("#source h2").inner_text().endswith(f"dags/sub/c.toml at {moved[:8]}")
    card = page.locator("#versions")
    assert card.evaluate("el => el.scrollWidth <= el.clientWidth"), "the Versions table overflows its card"
    shoot(page, "dag-versions")


def test_screenshots_dir_is_ignored_by_git():
    root = Path(__file__).resolve().parent.parent
    assert "/test-output/" in (root / ".gitignore").read_text().splitlines()


LONG_IDS = ["t000_transform_customer_orders_by_region", "aaaaaaaaaaaaaaaaaaaaaaa", "load",
            "a_really_long_task_identifier_for_the_twenty_attempts_case_that_never_ends_well"]


def test_long_task_ids_stay_inside_the_gantt_chart_and_their_graph_boxes(page, make_repo):
    """A 24-character Gantt label was wider than its 160 px column: its first letters were
    cut off at the chart's left edge (`t000_transform…` read `000_transform…`)."""
    tasks = "".join(f'[tasks.{t}]\ncmd = "echo {n}"\n' + (f'deps = ["{LONG_IDS[n - 1]}"]\n' if n else "") + "\n"
                    for n, t in enumerate(LONG_IDS))
    repo = make_repo({"dags/ids.toml": tasks})
    run_id = gitflowd("run", "ids", cwd=repo.path, check_rc=0).stdout.splitlines()[0]
    site = repo.path / ".gitflowd/site/dags/ids"
    page.goto((site / f"runs/{run_id}/index.html").as_uri())
    chart = page.locator("#gantt svg").bounding_box()
    for task in LONG_IDS:
        label = page.locator(f'#gantt g[data-task="{task}"] text').first.bounding_box()
        assert label["x"] >= chart["x"], (task, label, chart)
    page.goto((site / "index.html").as_uri())
    for task in LONG_IDS:
        node = page.locator(f'#graph g[data-task="{task}"]')
        box, text = node.locator("rect").bounding_box(), node.locator("text").last.bounding_box()
        assert text["x"] + text["width"] <= box["x"] + box["width"], (task, text, box)


def test_a_long_task_id_wraps_instead_of_pushing_the_task_table_out_of_its_card(page, make_repo):
    """An 80-character id cannot break (no spaces): the run page's task table grew wider than
    its card, and End, Duration, Exit and Command were scrolled out of sight."""
    long_id = LONG_IDS[-1]
    repo = make_repo({"dags/wide.toml": f'[tasks.{long_id}]\ncmd = "echo try $GITFLOWD_ATTEMPT; exit 1"\nretries = 5\n'})
    run_id = gitflowd("run", "wide", cwd=repo.path, check_rc=1).stdout.splitlines()[0]
    page.goto((repo.path / f".gitflowd/site/dags/wide/runs/{run_id}/index.html").as_uri())
    card = page.locator("#tasks")
    assert card.evaluate("el => el.scrollWidth <= el.clientWidth"), "the task table overflows its card"
    assert page.locator(f'#tasks tr[data-task="{long_id}"] .attempts a').count() == 6
    page.click(f'#tasks tr[data-task="{long_id}"] .attempts a:text-is("#6")')
    assert page.url.endswith(f"{long_id}.6.html")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the log page scrolls sideways"
    assert page.locator("pre.log").inner_text().strip() == "try 6"


def test_the_full_raw_log_of_a_long_ascii_log_reads_as_utf8_from_disk(page, make_repo):
    """A browser guesses the encoding of a .txt file from its first bytes: a log that is
    ASCII for its first 300 KiB opened as windows-1252, and 'héllo ✓' read 'hÃ©llo âœ“'."""
    repo = make_repo({"dags/big.toml": '[tasks.u]\ncmd = "seq -f \'plain ascii line %g\' 20000; echo \'héllo ✓ 日本語\'"\n'})
    run_id = gitflowd("run", "big", cwd=repo.path, check_rc=0).stdout.splitlines()[0]
    page.goto((repo.path / f".gitflowd/site/dags/big/runs/{run_id}/u.1.html").as_uri())
    assert page.locator("pre.log").inner_text().rstrip().endswith("héllo ✓ 日本語")
    page.click("text=Full log (raw text)")
    assert page.url.endswith("u.1.log.txt")
    text = page.evaluate("document.body.innerText")
    assert text.startswith("plain ascii line 1\n") and text.rstrip().endswith("héllo ✓ 日本語"), text[-60:]


def test_the_timeline_tells_each_tasks_state_by_a_glyph_not_only_by_colour(page, failed_run):
    """The Gantt chart told a failed task from a succeeded one by its bar's red or green
    alone (the state was only in a hover title): the one chart breaking the site's rule that
    every state also has a glyph."""
    repo, state, site, run_id = failed_run
    page.goto((site / f"dags/umbrella/runs/{run_id}/index.html").as_uri())
    glyphs = {"success": "✓", "failed": "✕", "upstream_failed": "↑"}
    rows = page.locator("#gantt g[data-task]").all()
    assert len(rows) == 5
    for row in rows:
        assert row.locator("text.glyph").count() == 1, row.get_attribute("data-task")
        shown = row.locator("text.glyph").text_content()
        assert shown == glyphs[row.get_attribute("data-state")], (row.get_attribute("data-task"), shown)
    chart = page.locator("#gantt svg").bounding_box()
    for text in page.locator("#gantt svg text").all():
        box = text.bounding_box()
        assert chart["x"] <= box["x"] and box["x"] + box["width"] <= chart["x"] + chart["width"]
    join = page.locator('#gantt g[data-task="join"]')
    label, glyph = join.locator("text").first.bounding_box(), join.locator("text.glyph").bounding_box()
    assert label["x"] + label["width"] <= glyph["x"], "the glyph overlaps the task's name"
    shoot(page, "run-gantt-glyphs")


def test_each_run_of_the_grid_is_one_stop_for_the_keyboard(page, failed_run):
    """A grid column's duration bar and its square both link to the run page: Tab stopped
    twice per run (100 stops over 50 runs before the first task cell), and a screen reader
    announced an empty link."""
    repo, state, site, run_id = failed_run
    page.goto((site / "dags/umbrella/index.html").as_uri())
    header = page.locator(f'table.grid thead th[data-run="{run_id}"]')
    focusable = header.evaluate("th => [...th.querySelectorAll('a')].filter(a => a.tabIndex >= 0).length")
    assert focusable == 1
    page.locator(f'table.grid thead a.sq[data-run="{run_id}"]').focus()
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.className") != "bar"
    assert page.locator("table.grid a.bar").first.get_attribute("aria-hidden") == "true"


def test_pages_of_a_dag_and_task_with_ids_of_200_characters_do_not_scroll_sideways(page, make_repo):
    """Ids may be 200 characters long and have no spaces: the page titles (h1) and the
    breadcrumbs ran off the right edge, so every page of such a DAG scrolled sideways."""
    dag_id, task_id = "d" + "_long_dag_name" * 14, "t" + "_very_long_task_name" * 9
    repo = make_repo({f"dags/{dag_id}.toml": f'[tasks.{task_id}]\ncmd = "echo hi"\n\n[tasks.b]\ncmd = "true"\ndeps = ["{task_id}"]\n'})
    run_id = gitflowd("run", dag_id, cwd=repo.path, check_rc=0).stdout.splitlines()[0]
    site = repo.path / ".gitflowd/site"
    for rel in ("index.html", f"dags/{dag_id}/index.html", f"dags/{dag_id}/runs/{run_id}/index.html",
                f"dags/{dag_id}/runs/{run_id}/{task_id}.1.html"):
        page.goto((site / rel).as_uri())
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), rel

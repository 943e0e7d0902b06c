"""The static site from real journals, logs and a registry recorded from a real Git repo."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from gitflowd import journal
from gitflowd.lock import StateLock
from gitflowd.registry import record_snapshot
from gitflowd.repo import Repo
from gitflowd.site import Site
from gitflowd.site_listener import SiteListener
from gitflowd.sitedata import PAGE_SIZE
from gitflowd.sitelogs import read_log
from gitflowd.sitetemplates import templates_dir
from gitflowd.statedir import StateDir
from runfactory import T0, make_dag, write_run

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=timezone.utc)
EVIL = '<script>window.__pwned=1</script>"onmouseover="window.__pwned=2" \'><img src=x onerror=window.__pwned=3>'


def fixed_clock() -> datetime:
    return NOW


class Links(HTMLParser):
    """Every href/src of a page, and every attribute name (to find injected handlers)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        self.links += [v for k, v in attrs if k in ("href", "src") and v]


def parse(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def crawl(site: Path) -> set[Path]:
    """Every page reachable from index.html; fails on a link that resolves to no file."""
    seen: set[Path] = set()
    todo = [site / "index.html"]
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        if page.suffix != ".html":
            continue
        for link in parse(page).links:
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc and not link.startswith("/"), f"{page}: non-relative link {link}"
            if not parts.path:
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.is_file(), f"{page.relative_to(site)}: broken link {link}"
            assert target.is_relative_to(site.resolve()), f"{page}: link leaves the site: {link}"
            todo.append(target)
    return seen


UMBRELLA = {"fetch_sales": [], "fetch_weather": [], "clean_sales": ["fetch_sales"],
            "clean_weather": ["fetch_weather"], "join": ["clean_sales", "clean_weather"], "report": ["join"]}


def failing_run(state: Path, run_id: str = "scheduled__20260105T000000Z", day: int = 4) -> None:
    dag = make_dag("umbrella", UMBRELLA, description="Forecast umbrella demand")
    write_run(state, dag, run_id, T0 + timedelta(days=day),
              {"fetch_sales": ["success"], "fetch_weather": ["success"], "clean_sales": ["success"],
               "clean_weather": ["failed", "failed"], "join": "upstream_failed", "report": "upstream_failed"})


def good_runs(state: Path, count: int, dag_id: str = "umbrella", tasks=None) -> None:
    dag = make_dag(dag_id, tasks or UMBRELLA, description="Forecast umbrella demand")
    for day in range(count):
        logical = T0 + timedelta(days=day)
        write_run(state, dag, f"scheduled__{logical:%Y%m%dT%H%M%SZ}", logical, {t: ["success"] for t in dag.tasks})


def test_every_link_resolves_and_every_page_is_reachable(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    good_runs(state, 3)
    failing_run(state)
    Site(state, site, clock=fixed_clock).render_all()
    reached = crawl(site)
    pages = {p.resolve() for p in site.rglob("*.html")}
    assert pages <= reached, f"unreachable: {sorted(str(p) for p in pages - reached)}"
    run_dir = site / "dags/umbrella/runs/scheduled__20260105T000000Z"
    assert {p.name for p in run_dir.iterdir()} >= {"index.html", "clean_weather.1.html", "clean_weather.2.html"}
    html = (site / "index.html").read_text()
    assert 'http' not in re.sub(r'xmlns="http://www.w3.org/2000/svg"', "", html)  # no external asset
    status = json.loads((site / "status.json").read_text())
    umbrella = status["dags"][0]
    assert umbrella["id"] == "umbrella" and umbrella["runs_total"] == 4
    assert umbrella["runs"][0]["run_id"] == "scheduled__20260105T000000Z" and umbrella["runs"][0]["state"] == "failed"
    assert (site / umbrella["runs"][0]["url"]).is_file()


def test_an_attempt_with_an_empty_or_missing_log_gets_no_page_but_says_no_output(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    dag = make_dag("quiet", {"loud": [], "mute": ["loud"], "gone": ["loud"], "retry": []})
    run_id = "manual__20260101T000000Z"
    write_run(state, dag, run_id, T0, {"loud": ["success"], "mute": ["success"], "gone": ["success"], "retry": ["failed", "success"]},
              logs={("loud", 1): "hello\n", ("mute", 1): "", ("retry", 1): b""})
    StateDir(state).log_path("quiet", run_id, "gone", 1).unlink()
    Site(state, site, clock=fixed_clock).render_all()
    run_dir = site / "dags/quiet/runs" / run_id
    assert {p.name for p in run_dir.glob("*.html")} == {"index.html", "loud.1.html", "retry.2.html"}
    page = (run_dir / "index.html").read_text()
    rows = dict(re.findall(r'<tr id="task-([^"]+)" data-task="[^"]+" data-state="[^"]+">(.*?)</tr>', page, re.S))
    assert set(rows) == {"loud", "mute", "gone", "retry"}  # hooks unchanged, one row per task
    for task in ("mute", "gone"):
        assert "no output" in rows[task] and "href" not in rows[task]
        assert f'<g data-task="{task}" data-state="success">' in page
    assert 'href="loud.1.html"' in rows["loud"] and "no output" not in rows["loud"]
    assert rows["retry"].count('<span class="muted">no output</span>') == 1 and 'href="retry.2.html"' in rows["retry"] and "retry.1.html" not in page
    assert 'href="loud.1.html"' in page.split('id="gantt"')[1].split("</svg>")[0]  # the timeline links only logs
    assert "mute.1.html" not in page and "gone.1.html" not in page
    assert "retry.1.html" not in (run_dir / "retry.2.html").read_text()  # nor does the other attempt's page
    dag_page = (site / "dags/quiet/index.html").read_text()
    assert re.search(rf'data-task="mute" data-state="success" data-run="{run_id}" href="../../dags/quiet/runs/{run_id}/index.html"', dag_page)
    assert f'href="../../dags/quiet/runs/{run_id}/loud.1.html"' in dag_page
    graph = dag_page.split('id="graph"')[1]  # as docs/site.md says: a quiet task's node links to the run page
    assert re.search(rf'<g class="node s-success" data-task="mute" data-state="success">\s*<a href="../../dags/quiet/runs/{run_id}/index.html">', graph)
    crawl(site)  # no broken link anywhere


def test_a_log_that_grows_after_an_empty_render_gets_its_page_at_the_next_render(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    dag = make_dag("quiet", {"slow": []})
    run_id = "manual__20260101T000000Z"
    write_run(state, dag, run_id, T0, {"slow": ["running"]}, logs={("slow", 1): ""}, finish=None)
    renderer = Site(state, site, clock=fixed_clock)
    renderer.render_all()
    log_page = site / "dags/quiet/runs" / run_id / "slow.1.html"
    assert not log_page.exists() and "no output" in (log_page.parent / "index.html").read_text()
    StateDir(state).log_path("quiet", run_id, "slow", 1).write_text("first line\n")
    renderer.render_run("quiet", run_id)  # the incremental path: the cache must not remember "empty"
    assert "first line" in log_page.read_text()
    assert 'href="slow.1.html"' in (log_page.parent / "index.html").read_text()
    assert f'href="../../dags/quiet/runs/{run_id}/slow.1.html"' in (site / "dags/quiet/index.html").read_text()
    crawl(site)


def test_hooks_carry_task_and_run_states(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    failing_run(state)
    Site(state, site, clock=fixed_clock).render_all()
    run_page = (site / "dags/umbrella/runs/scheduled__20260105T000000Z/index.html").read_text()
    states = dict(re.findall(r'<tr id="task-[^"]+" data-task="([^"]+)" data-state="([^"]+)"', run_page))
    assert states == {"fetch_sales": "success", "fetch_weather": "success", "clean_sales": "success",
                      "clean_weather": "failed", "join": "upstream_failed", "report": "upstream_failed"}
    dag_page = (site / "dags/umbrella/index.html").read_text()
    assert 'data-task="clean_weather" data-state="failed" data-run="scheduled__20260105T000000Z"' in dag_page
    assert '<g class="node s-failed" data-task="clean_weather" data-state="failed">' in dag_page
    assert 'http-equiv="refresh"' not in dag_page + run_page  # nothing is running


def test_a_cleared_task_shows_no_duration_or_exit_of_its_earlier_attempts(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    failing_run(state)
    path = StateDir(state).journal_path("umbrella", "scheduled__20260105T000000Z")
    with journal.JournalWriter(path) as writer:
        writer.append({"event": journal.TASKS_CLEARED, "tasks": ["clean_weather"]})
    Site(state, site, clock=fixed_clock).render_all()
    page = (site / "dags/umbrella/runs/scheduled__20260105T000000Z/index.html").read_text()
    row = re.search(r'<tr id="task-clean_weather".*?</tr>', page, re.S).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert 'data-state="pending"' in row and "#2" in cells[2]  # its attempts stay listed
    assert cells[3:7] == ["—", "—", "—", "—"]  # start, end, duration, exit: none of this execution
    fetch = re.search(r'<tr id="task-fetch_sales".*?</tr>', page, re.S).group(0)
    assert re.findall(r"<td[^>]*>(.*?)</td>", fetch, re.S)[6] == "0"


def test_running_pages_refresh_and_settled_pages_do_not(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    dag = make_dag("umbrella", UMBRELLA)
    write_run(state, dag, "manual__20260110T000000Z", T0, {"fetch_sales": ["success"], "fetch_weather": ["running"]}, finish=None)
    with StateLock(StateDir(state).lock_path, "run"):  # as its runner renders it
        Site(state, site, clock=fixed_clock).render_all()
    run_dir = site / "dags/umbrella/runs/manual__20260110T000000Z"
    for page in (site / "index.html", site / "dags/umbrella/index.html", run_dir / "index.html", run_dir / "fetch_weather.1.html"):
        assert 'http-equiv="refresh"' in page.read_text(), page
        assert 'data-waiting="runner-gone"' not in page.read_text()
    assert 'http-equiv="refresh"' not in (run_dir / "fetch_sales.1.html").read_text()


def evil_repo(make_repo):
    source = (f'[dag]\ndescription = """{EVIL}"""\n\n'
              f"[tasks.fetch]\ncmd = '''echo \"{EVIL}\"'''\n")
    repo = make_repo()
    repo.commit({"dags/evil.toml": source}, message=f"add {EVIL}")
    return repo


def test_injected_markup_is_escaped_everywhere(make_repo, tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    repo = evil_repo(make_repo)
    with Repo(repo.path) as git_repo:
        snapshot = git_repo.load(repo.head())
    record_snapshot(state, snapshot)
    dag = snapshot.dags["evil"].dag
    write_run(state, dag, "manual__20260101T000000Z", T0, {"fetch": ["failed"]},
              logs={("fetch", 1): f"{EVIL}\n\x1b[31mred\x1b[0m\n"},
              commit_info={"subject": f"add {EVIL}", "author": f"Eve {EVIL}", "time": T0.isoformat()})
    Site(state, site, clock=fixed_clock).render_all()
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 4
    for page in pages:
        text = page.read_text()
        assert "<script" not in text.lower(), page
        assert "<img" not in text.lower(), page
        for tag, attrs in parse(page).tags:
            assert not [k for k, _ in attrs if k.startswith("on")], f"{page}: <{tag} {attrs}>"
    log_page = (site / "dags/evil/runs/manual__20260101T000000Z/fetch.1.html").read_text()
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in log_page and "\x1b" not in log_page
    assert "&lt;script&gt;" in (site / "dags/evil/index.html").read_text()  # description and source


def test_secrets_given_to_the_site_are_masked_and_large_logs_show_the_tail(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    dag = make_dag("big", {"loud": []})
    lines = [f"line {n} token=hunter2-secret\n" for n in range(40000)]
    write_run(state, dag, "manual__20260101T000000Z", T0, {"loud": ["success"]}, logs={("loud", 1): "".join(lines)})
    Site(state, site, secrets={"TOKEN": "hunter2-secret"}, clock=fixed_clock).render_all()
    run_dir = site / "dags/big/runs/manual__20260101T000000Z"
    page = (run_dir / "loud.1.html").read_text()
    assert "hunter2" not in page and "token=***" in page
    assert "line 39999 " in page and "line 0 " not in page  # the tail, not the head
    raw = (run_dir / "loud.1.log.txt").read_text(encoding="utf-8-sig")
    assert raw.startswith("line 0 token=***\n") and raw.count("\n") == 40000 and "hunter2" not in raw
    assert 'href="loud.1.log.txt"' in page.replace("../../../../dags/big/runs/manual__20260101T000000Z/", "")



def test_an_unfinished_attempts_log_is_shown_only_when_its_secrets_can_be_masked(tmp_path):
    """The engine masks a log when its attempt ends: a running (or orphaned) attempt's log is
    still in clear on disk, so a render without the DAG's secrets must not publish it."""
    state, site = tmp_path / "state", tmp_path / "site"
    dag = dataclasses.replace(make_dag("m", {"done": [], "leak": ["done"]}), secrets=("TOKEN",))
    write_run(state, dag, "manual__20260101T000000Z", T0, {"done": ["success"], "leak": ["running"]}, finish=None,
              logs={("done", 1): "done, masked on disk: ***\n", ("leak", 1): "token=s3cr3tvalue\n"})
    plain = make_dag("plain", {"loud": []})
    write_run(state, plain, "manual__20260101T000000Z", T0, {"loud": ["running"]}, finish=None,
              logs={("loud", 1): "still going\n"})
    run_dir = site / "dags/m/runs/manual__20260101T000000Z"

    for secrets in (None, {"OTHER": "other-value"}):  # none, or not this DAG's
        Site(state, site, secrets=secrets, clock=fixed_clock).render_all()
        assert [p for p in site.rglob("*") if p.is_file() and b"s3cr3tvalue" in p.read_bytes()] == []
        leak = (run_dir / "leak.1.html").read_text()
        assert 'data-log="withheld"' in leak and "Log not shown" in leak and "TOKEN" in leak and "--secrets-file" in leak
        assert "done, masked on disk: ***" in (run_dir / "done.1.html").read_text()  # ended: masked already
        assert "still going" in (site / "dags/plain/runs/manual__20260101T000000Z/loud.1.html").read_text()
        assert 'href="leak.1.html"' in (run_dir / "index.html").read_text()  # the note is linked as the log

    Site(state, site, secrets={"TOKEN": "s3cr3tvalue"}, clock=fixed_clock).render_all()
    leak = (run_dir / "leak.1.html").read_text()
    assert "token=***" in leak and "s3cr3tvalue" not in leak and "Log not shown" not in leak

    other_runner = Site(state, tmp_path / "site2", secrets={"OTHER": "other-value"}, clock=fixed_clock)
    other_runner.render_run("m", "manual__20260101T000000Z")  # a first render builds everything, this DAG's runs too
    assert "Log not shown" in (tmp_path / "site2/dags/m/runs/manual__20260101T000000Z/leak.1.html").read_text()


def snapshot_files(site: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(site)): (p.stat().st_mtime_ns, p.read_bytes()) for p in site.rglob("*") if p.is_file()}


def test_incremental_render_rewrites_only_the_run_its_dag_page_and_the_index(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    good_runs(state, 5)
    good_runs(state, 2, dag_id="other", tasks={"a": []})
    renderer = Site(state, site, clock=fixed_clock)
    renderer.render_all()
    before = snapshot_files(site)
    time.sleep(0.02)  # let a rewrite show in mtimes on coarse file systems
    failing_run(state, "scheduled__20260120T000000Z", day=19)
    Site(state, site, clock=fixed_clock).render_run("umbrella", "scheduled__20260120T000000Z")
    after = snapshot_files(site)
    touched = {name for name in after if name not in before or after[name][0] != before[name][0]}
    run_dir = "dags/umbrella/runs/scheduled__20260120T000000Z/"
    expected_pages = {"index.html", "status.json", "dags/umbrella/index.html"} | {
        run_dir + name for name in ("index.html", "fetch_sales.1.html", "fetch_weather.1.html", "clean_sales.1.html",
                                    "clean_weather.1.html", "clean_weather.2.html")}
    assert {n for n in touched if not n.startswith(".cache/")} == expected_pages
    assert {n for n in touched if n.startswith(".cache/")} <= {
        ".cache/v4/index.json", ".cache/v4/umbrella/runs.json", ".cache/v4/umbrella/cells/scheduled__20260120T000000Z.json", ".cache/v4/lock"}
    # the incremental result equals a full render of the same state
    full = tmp_path / "full"
    Site(state, full, clock=fixed_clock).render_all()
    fresh = snapshot_files(full)
    for name in ("index.html", "status.json", "dags/umbrella/index.html", "dags/other/index.html"):
        assert after[name][1] == fresh[name][1], name


def test_thousand_runs_page_stays_windowed_and_new_runs_touch_one_grid_page(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    good_runs(state, 1000, tasks={"a": [], "b": ["a"]})
    renderer = Site(state, site, clock=fixed_clock)
    renderer.render_all()
    dag_page = (site / "dags/umbrella/index.html").read_text()
    assert dag_page.count('<th data-run="') == PAGE_SIZE
    assert 'data-run="scheduled__20280926T000000Z"' in dag_page  # the newest (day 999)
    assert len(list((site / "dags/umbrella").glob("runs-*.html"))) == 1000 // PAGE_SIZE
    oldest = (site / "dags/umbrella/runs-1.html").read_text()
    assert oldest.count('<th data-run="') == PAGE_SIZE and 'data-run="scheduled__20260101T000000Z"' in oldest
    before = snapshot_files(site)
    good_dag = make_dag("umbrella", {"a": [], "b": ["a"]})
    logical = T0 + timedelta(days=1000)
    write_run(state, good_dag, f"scheduled__{logical:%Y%m%dT%H%M%SZ}", logical, {"a": ["success"], "b": ["success"]})
    time.sleep(0.02)
    renderer.render_run("umbrella", f"scheduled__{logical:%Y%m%dT%H%M%SZ}")
    after = snapshot_files(site)
    grids = {n for n in after if n.startswith("dags/umbrella/runs-") and (n not in before or after[n][0] != before[n][0])}
    assert grids == {"dags/umbrella/runs-20.html", "dags/umbrella/runs-21.html"}  # new last page + its neighbour's link


def damaged_state(state: Path) -> Path:
    """Two good runs, then a garbage line after the first record of the older one; returns its journal."""
    good_runs(state, 2)
    bad = StateDir(state).journal_path("umbrella", "scheduled__20260101T000000Z")
    lines = bad.read_bytes().splitlines(keepends=True)
    bad.write_bytes(lines[0] + b'{"garbage": true}\n' + b"".join(lines[1:]))
    return bad


def test_damaged_journal_skips_that_run_only(tmp_path, caplog):
    state, site = tmp_path / "state", tmp_path / "site"
    damaged_state(state)
    Site(state, site, clock=fixed_clock).render_all()
    assert (site / "dags/umbrella/runs/scheduled__20260102T000000Z/index.html").is_file()
    assert not (site / "dags/umbrella/runs/scheduled__20260101T000000Z").exists()
    assert "corrupt journal record" in caplog.text


def test_registry_shows_source_versions_and_load_errors(make_repo, tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    good = '[dag]\ndescription = "Forecast"\nschedule = "@daily"\n\n[tasks.a]\ncmd = "echo a"\n'
    repo = make_repo({"dags/umbrella.toml": good, "dags/retired.toml": good.replace("Forecast", "Old")})
    with Repo(repo.path) as git_repo:
        record_snapshot(state, git_repo.load(repo.head()))
        first = repo.head()
        repo.commit({"dags/umbrella.toml": good + "[tasks.b]\ndeps = ['nope']\ncmd = 'x'\n"}, message="break it",
                    remove=("dags/retired.toml",))
        record_snapshot(state, git_repo.load(repo.head()))
    Site(state, site, clock=fixed_clock).render_all()
    index = (site / "index.html").read_text()
    assert "dags/umbrella.toml:8</code>: task &#39;b&#39; depends on unknown task &#39;nope&#39;" in index and "nope" in index  # the banner: file, line, message
    assert first[:8] in index and repo.head()[:8] in index  # loaded-from beside newest tried
    assert re.search(r'class="dagrow retired" data-dag="retired"', index)
    dag_page = (site / "dags/umbrella/index.html").read_text()
    assert "<span>[tasks.a]</span>" in dag_page and "break it" in dag_page and "invalid" in dag_page
    assert "Next run" in dag_page and "2026-02-02 00:00:00" in dag_page  # next @daily tick after NOW
    crawl(site)


def test_a_moved_file_is_a_version_row_and_the_source_is_named_at_the_commit_that_moved_it(make_repo, tmp_path):
    """A `git mv` left no trace in the history, and the Source header named the new path at the
    commit of the old one (where no such file existed)."""
    state, site = tmp_path / "state", tmp_path / "site"
    good = '[tasks.a]\ncmd = "echo a"\n'
    repo = make_repo({"dags/c.toml": good})
    with Repo(repo.path) as git_repo:
        record_snapshot(state, git_repo.load(repo.head()))
        moved = repo.commit({"dags/sub/c.toml": good}, message="move c", remove=("dags/c.toml",))
        record_snapshot(state, git_repo.load(repo.head()))
    Site(state, site, clock=fixed_clock).render_all()
    page = (site / "dags/c/index.html").read_text()
    versions = page.split('id="versions"')[1].split("</section>")[0]
    assert '<span class="tag ch-moved">moved</span>' in versions and "move c" in versions
    assert "from <code>dags/c.toml</code> to <code>dags/sub/c.toml</code>" in versions
    assert f"dags/sub/c.toml at <code>{moved[:8]}</code>" in page


class Rows(HTMLParser):
    """The text of each cell of each row of one table body."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def test_versions_are_ordered_by_load_with_the_commit_time_beside(make_repo, tmp_path, monkeypatch):
    """After `git reset --hard HEAD~1` the table's only time was the commit's: 'added 16:54:38'
    sat above 'removed 16:54:40' and read as if the DAG were still removed."""
    state, site = tmp_path / "state", tmp_path / "site"
    good = '[tasks.a]\ncmd = "echo a"\n'
    loaded = [datetime(2026, 1, 31, 16, 55, s, tzinfo=timezone.utc) for s in (0, 10, 20)]
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-01-31T16:54:38Z")
    repo = make_repo({"dags/d.toml": good})
    added = repo.head()
    with Repo(repo.path) as git_repo:
        record_snapshot(state, git_repo.load(added), now=loaded[0])
        monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-01-31T16:54:40Z")
        dropped = repo.commit(remove=("dags/d.toml",), message="drop d")
        record_snapshot(state, git_repo.load(dropped), now=loaded[1])
        subprocess.run(["git", "reset", "-q", "--hard", "HEAD~1"], cwd=repo.path, check=True)  # the branch moves back
        record_snapshot(state, git_repo.load(git_repo.resolve()), now=loaded[2])
    Site(state, site, clock=fixed_clock).render_all()
    table = (site / "dags/d/index.html").read_text().split('id="versions"')[1].split("</table>")[0]
    parser = Rows()
    parser.feed(table)
    assert parser.rows[0] == ["Loaded", "Change", "Commit"]
    assert [(r[0], r[1], r[2].split()[0], r[2].split("committed ")[1]) for r in parser.rows[1:]] == [
        ("2026-01-31 16:55:20", "added", added[:8], "2026-01-31 16:54:38"),
        ("2026-01-31 16:55:10", "removed", dropped[:8], "2026-01-31 16:54:40"),
        ("2026-01-31 16:55:00", "added", added[:8], "2026-01-31 16:54:38"),
    ]
    assert "the branch moved back" in table


def test_render_command_prints_index_and_rejects_a_missing_state(cli, tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    failing_run(state)
    done = cli("render", "--state", str(state), "--site", str(site))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(site / "index.html") and (site / "index.html").is_file()
    done = cli("render", "--state", str(tmp_path / "nope"), "--site", str(site))
    assert done.returncode == 1 and done.stderr.strip() == f"gitflowd: error: no state directory at {tmp_path / 'nope'}: run a DAG first, or pass --state DIR"
    assert "Traceback" not in done.stderr


def test_render_command_renders_the_rest_of_a_damaged_state_and_exits_1(cli, tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    bad = damaged_state(state)
    done = cli("render", "--state", str(state), "--site", str(site))
    assert done.returncode == 1 and done.stdout.strip() == str(site / "index.html"), done.stderr
    assert f"{bad}:2: corrupt journal record" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "gitflowd: error: 1 run journal(s) could not be read and are not on the site (see above)"
    assert (site / "dags/umbrella/runs/scheduled__20260102T000000Z/index.html").is_file()


def test_listener_renders_while_running_and_at_the_end(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    dag = make_dag("live", {"a": [], "b": ["a"]})
    listener = SiteListener(Site(state, site), interval=0.05)
    dirs = StateDir(state)
    page = site / "dags/live/runs/manual__20260101T000000Z/index.html"
    with journal.JournalWriter(dirs.journal_path("live", "manual__20260101T000000Z")) as writer:
        def emit(**record):
            for stamped in writer.append(record):
                listener.on_record(stamped, dirs.load_run("live", "manual__20260101T000000Z"))
        emit(event=journal.RUN_CREATED, dag_id="live", run_id="manual__20260101T000000Z", kind="manual", dag=dag.to_dict(),
             commit="abc", logical_date=T0.isoformat())
        emit(event=journal.RUN_STARTED)
        emit(event=journal.TASK_STARTED, task="a", attempt=1)
        assert wait_for(lambda: page.is_file() and 'data-task="a" data-state="running"' in page.read_text())
        emit(event=journal.TASK_FINISHED, task="a", attempt=1, state="success", exit_code=0)
        emit(event=journal.TASK_STARTED, task="b", attempt=1)
        emit(event=journal.TASK_FINISHED, task="b", attempt=1, state="failed", exit_code=3)
        emit(event=journal.RUN_FINISHED, state="failed")
    text = page.read_text()  # the end renders at once, no wait
    assert 'data-task="b" data-state="failed"' in text and 'http-equiv="refresh"' not in text
    listener.close()
    assert threading.active_count() < 50


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_templates_ship_inside_the_package():
    here = Path(__file__).resolve().parent.parent
    assert templates_dir().resolve() == (here / "templates").resolve()
    assert (here / "gitflowd" / "templates").is_symlink()
    assert 'gitflowd = ["templates/**/*"]' in (here / "pyproject.toml").read_text()


@pytest.mark.parametrize("bad_id", ["../escape", "a/b"])
def test_unsafe_run_ids_are_not_written_outside_the_site(tmp_path, bad_id):
    state, site = tmp_path / "state", tmp_path / "site"
    dag = make_dag("umbrella", {"a": []})
    write_run(state, dag, "manual__20260101T000000Z", T0, {"a": ["success"]})
    journal_path = StateDir(state).journal_path("umbrella", "manual__20260101T000000Z")
    records = journal.read(journal_path)
    records[0]["run_id"] = bad_id
    forged = StateDir(state).journal_path("umbrella", "manual__20260102T000000Z")
    with journal.JournalWriter(forged) as writer:
        for record in records:
            writer.append({k: v for k, v in record.items() if k not in ("v", "seq", "crc")})
    Site(state, site, clock=fixed_clock).render_all()
    assert not (tmp_path / "escape").exists() and all(p.resolve().is_relative_to(site.resolve()) for p in site.rglob("*"))


def test_first_incremental_render_of_a_fresh_or_deleted_site_builds_everything(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    good_runs(state, 4)
    Site(state, site, clock=fixed_clock).render_run("umbrella", "scheduled__20260104T000000Z")
    dag_page = (site / "dags/umbrella/index.html").read_text()
    assert dag_page.count('<th data-run="') == 4  # not only the run just rendered
    (site / ".cache/v4/index.json").write_text("{torn")  # damaged cache: rebuilt, not trusted
    Site(state, site, clock=fixed_clock).render_run("umbrella", "scheduled__20260104T000000Z")
    assert json.loads((site / ".cache/v4/index.json").read_text())["umbrella"]["total"] == 4


def test_backfilled_old_run_shifts_only_the_pages_after_it(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    dag = make_dag("umbrella", {"a": []})
    for day in range(2, 2 * (2 * PAGE_SIZE + 10), 2):  # even days: 110 runs, pages of 50
        logical = T0 + timedelta(days=day)
        write_run(state, dag, f"scheduled__{logical:%Y%m%dT%H%M%SZ}", logical, {"a": ["success"]})
    renderer = Site(state, site, clock=fixed_clock)
    renderer.render_all()
    assert sorted(p.name for p in (site / "dags/umbrella").glob("runs-*.html")) == ["runs-1.html", "runs-2.html", "runs-3.html"]
    before = snapshot_files(site)
    time.sleep(0.02)
    logical = T0 + timedelta(days=2 * PAGE_SIZE + 1)  # lands on page 2
    write_run(state, dag, f"backfill__{logical:%Y%m%dT%H%M%SZ}", logical, {"a": ["failed"]}, kind="backfill")
    renderer.render_run("umbrella", f"backfill__{logical:%Y%m%dT%H%M%SZ}")
    after = snapshot_files(site)
    grids = {n for n in after if "/runs-" in n and after[n][0] != before[n][0]}
    assert grids == {"dags/umbrella/runs-2.html", "dags/umbrella/runs-3.html"}
    assert f'data-run="backfill__{logical:%Y%m%dT%H%M%SZ}"' in (site / "dags/umbrella/runs-2.html").read_text()


def test_render_dags_after_a_reload_shows_the_new_version_and_errors(make_repo, tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    good = '[dag]\ndescription = "v1"\n\n[tasks.a]\ncmd = "echo a"\n'
    repo = make_repo({"dags/umbrella.toml": good})
    renderer = Site(state, site, clock=fixed_clock)
    with Repo(repo.path) as git_repo:
        record_snapshot(state, git_repo.load(repo.head()))
        renderer.render_all()
        repo.commit({"dags/umbrella.toml": good.replace("v1", "v2"), "dags/new.toml": good.replace("v1", "new one")}, message="v2")
        changes = record_snapshot(state, git_repo.load(repo.head()))
    renderer.render_dags([c.dag_id for c in changes])
    assert "v2" in (site / "dags/umbrella/index.html").read_text()
    assert "new one" in (site / "dags/new/index.html").read_text()
    assert 'data-dag="new"' in (site / "index.html").read_text()
    crawl(site)


def test_a_resumed_run_lists_its_resumes_and_marks_them_on_the_timeline(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    dag = make_dag("umbrella", {"a": [], "b": ["a"]})
    path = write_run(state, dag, "manual__20260101T000000Z", T0, {"a": ["success"], "b": ["failed"]})
    later = T0 + timedelta(hours=3)
    with journal.JournalWriter(path, clock=lambda: later) as writer:
        writer.append({"event": journal.RUN_RESUMED, "commit": "f1f1" * 10, "tasks": ["b"], "interrupted": [],
                       "commit_info": {"subject": "fix b", "author": "Bea"}})
        writer.append({"event": journal.TASK_STARTED, "task": "b", "attempt": 2})
        writer.append({"event": journal.TASK_FINISHED, "task": "b", "attempt": 2, "state": "success", "exit_code": 0})
        writer.append({"event": journal.RUN_FINISHED, "state": "success"})
    StateDir(state).log_path("umbrella", "manual__20260101T000000Z", "b", 2).write_text("b again\n")
    Site(state, site, clock=fixed_clock).render_all()
    page = (site / "dags/umbrella/runs/manual__20260101T000000Z/index.html").read_text()
    assert page.count('<line class="mark"') == 1 and ">resume 1</text>" in page
    assert "f1f1f1f1</code> fix b" in page and "add pipeline" not in page  # the subject follows the commit
    assert 'href="b.1.html"' in page  # both attempts linked, relative to the run page
    assert 'href="b.2.html"' in page
    assert '<tr id="task-b" data-task="b" data-state="success">' in page


def test_a_new_dags_first_run_renders_that_dag_only(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    good_runs(state, 3)
    renderer = Site(state, site, clock=fixed_clock)
    renderer.render_all()
    before = snapshot_files(site)
    time.sleep(0.02)
    dag = make_dag("fresh", {"x": []})
    write_run(state, dag, "manual__20260301T000000Z", T0, {"x": ["success"]})
    renderer.render_run("fresh", "manual__20260301T000000Z")
    after = snapshot_files(site)
    touched = {n for n in after if not n.startswith(".cache/") and (n not in before or after[n][0] != before[n][0])}
    assert touched == {"index.html", "status.json", "dags/fresh/index.html",
                       "dags/fresh/runs/manual__20260301T000000Z/index.html", "dags/fresh/runs/manual__20260301T000000Z/x.1.html"}
    assert 'data-dag="fresh"' in (site / "index.html").read_text() and 'data-dag="umbrella"' in (site / "index.html").read_text()


def test_lost_dag_cache_is_rebuilt_for_that_dag_with_its_grid_pages(tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    good_runs(state, PAGE_SIZE + 5, tasks={"a": []})
    good_runs(state, 2, dag_id="other", tasks={"b": []})
    renderer = Site(state, site, clock=fixed_clock)
    renderer.render_all()
    shutil.rmtree(site / ".cache/v4/umbrella")
    (site / "dags/umbrella/runs-1.html").unlink()
    renderer.render_dags(["umbrella"])
    assert (site / "dags/umbrella/runs-1.html").is_file()
    crawl(site)
    shutil.rmtree(site / ".cache/v4/umbrella")
    logical = T0 + timedelta(days=400)
    write_run(state, make_dag("umbrella", {"a": []}), f"scheduled__{logical:%Y%m%dT%H%M%SZ}", logical, {"a": ["failed"]})
    renderer.render_run("umbrella", f"scheduled__{logical:%Y%m%dT%H%M%SZ}")
    assert (site / "dags/umbrella/index.html").read_text().count('<th data-run="') == PAGE_SIZE
    crawl(site)


@pytest.mark.parametrize("chunk", [128, 1000, 1 << 20])
def test_raw_log_copies_mask_across_chunks_and_keep_every_byte(tmp_path, chunk):
    from gitflowd.sitelogs import copy_masked
    source, target = tmp_path / "in.log", tmp_path / "out.txt"
    for text in ["", "a\n", "no newline", "line SECRET x\n" * 300, ("y" * 300 + "SECRET\n") * 20 + "tail SECRET", "x" * 5000]:
        source.write_bytes(text.encode())
        copy_masked(source, target, ["SECRET"], chunk=chunk)
        assert target.read_bytes() == "\ufeff".encode() + text.replace("SECRET", "***").encode()  # BOM: UTF-8 for browsers


def test_render_into_a_file_or_an_unwritable_place_is_one_line(cli, tmp_path):
    state = tmp_path / "state"
    failing_run(state)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    done = cli("render", "--state", str(state), "--site", str(blocker))
    assert done.returncode == 1 and done.stderr.strip() == f"gitflowd: error: site path {blocker} exists and is not a directory"
    done = cli("render", "--state", str(state), "--site", str(blocker / "site"))
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("gitflowd: error: ") and str(blocker) in done.stderr


def test_render_refuses_a_site_that_is_the_state_directory_or_around_it(cli, tmp_path):
    """`--site` mixed up with `--state` (or `--repo`) wrote index.html, dags/ and .cache into
    the state directory, or made the state part of the site that a web server publishes:
    journals, workspaces and the unmasked logs of running tasks."""
    state = tmp_path / "home/state"
    failing_run(state)
    for site, word in ((state, "is the state directory"), (tmp_path / "home", "contains the state directory"),
                       (tmp_path, "contains the state directory")):
        before = sorted(p for p in tmp_path.rglob("*"))
        done = cli("render", "--state", str(state), "--site", str(site), cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == "", (site, done.stdout, done.stderr)
        assert done.stderr.startswith("gitflowd: error: site directory ") and word in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written
    for site in (tmp_path / "home/site", state / "site"):  # beside it, as by default, or inside it
        done = cli("render", "--state", str(state), "--site", str(site), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    # not only render: a run or a daemon rendering into such a --site published the state as well
    for command in (("run", "d"), ("daemon", "--once"), ("status",)):
        done = cli(*command, "--state", str(state), "--site", str(tmp_path / "home"), cwd=tmp_path)
        assert done.returncode == 2 and "contains the state directory" in done.stderr, (command, done.stderr)
    done = cli("status", "--state", str(state), "--site", "", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == (
        "gitflowd: error: empty --site '': give a directory, or leave --site out for the default")


def test_the_site_masks_as_the_engine_does_with_the_same_marker_and_no_short_values():
    """A one-character value (DEBUG=1 in a secrets file) would mask every '1' on every page."""
    from gitflowd.secrets import Masker
    from gitflowd.sitelogs import mask_secrets

    values = ["1", "ab", "hunter2"]
    text = "build 1 of ab: token hunter2"
    assert mask_secrets(text, values) == Masker(values).mask_bytes(text.encode()).decode() == "build 1 of ab: token ***"


def test_log_text_keeps_no_control_characters_but_tabs_and_line_ends():
    from gitflowd.sitelogs import clean_text

    raw = b"a\x00b\x07c\x1b[31mred\x1b[0m\td\r\ne\x7f\xff\n"
    assert clean_text(raw, []) == "a\ufffdb\ufffdcred\td\r\ne\ufffd\ufffd\n"


def test_a_progress_bar_redrawn_with_carriage_returns_shows_its_last_state_as_a_terminal_would(tmp_path):
    """A tqdm-style bar of 2,000 updates on one terminal line was 2,000 lines on the log page
    (a browser breaks lines at a lone CR); the raw text keeps every update."""
    state, site = tmp_path / "state", tmp_path / "site"
    bar = "".join(f"\r{i // 20:3d}% |{'#' * (i // 200):<10}| {i}/2000" for i in range(1, 2001))
    text = f"start\r\n{bar}\ndownload\r 50%\r100%\r\nSECRET-TOKEN 1\r\ndone\rDONE"
    dag = make_dag("bars", {"fit": []})
    write_run(state, dag, "manual__20260101T000000Z", T0, {"fit": ["success"]}, logs={("fit", 1): text})
    Site(state, site, secrets={"TOKEN": "SECRET-TOKEN"}, clock=fixed_clock).render_all()
    page = (site / "dags/bars/runs/manual__20260101T000000Z/fit.1.html").read_bytes().decode()  # CRs kept
    log = re.search(r'<pre class="log">(.*?)</pre>', page, re.S).group(1)
    assert log.replace("\r\n", "\n").split("\n") == ["start", "100% |##########| 2000/2000", "100%", "*** 1", "DONE"]
    assert "\r" not in log.replace("\r\n", "")
    with_tail = read_log(StateDir(state).log_path("bars", "manual__20260101T000000Z", "fit", 1), [], tail=40)
    assert with_tail.truncated and with_tail.text.endswith("DONE") and "\r" not in with_tail.text.replace("\r\n", "")


def test_a_rotated_secret_is_masked_from_the_next_render_of_a_long_lived_site(tmp_path, caplog):
    """The daemon's site reads its secrets file again when it changes (a daemon runs for months)."""
    import logging
    import os

    from gitflowd.secrets import SecretsFile

    state, site = tmp_path / "state", tmp_path / "site"
    dag = dataclasses.replace(make_dag("m", {"leak": []}), secrets=("TOKEN",))
    write_run(state, dag, "manual__20260101T000000Z", T0, {"leak": ["running"]}, finish=None,
              logs={("leak", 1): "old=first-value new=second-value\n"})
    path = tmp_path / "secrets.env"
    path.write_text("TOKEN=first-value\n")
    path.chmod(0o600)
    renderer = Site(state, site, secrets=SecretsFile(path), clock=fixed_clock)
    page = site / "dags/m/runs/manual__20260101T000000Z/leak.1.html"
    renderer.render_all()
    assert "old=*** new=second-value" in page.read_text()
    path.write_text("TOKEN=second-value\n")  # rotated (the size alone may not change: mtime and inode count too)
    os.utime(path, ns=(1, 1))
    renderer.render_run("m", "manual__20260101T000000Z")
    assert "old=first-value new=***" in page.read_text()
    path.chmod(0o644)  # turned bad: the last good values stay, said once
    with caplog.at_level(logging.WARNING, logger="gitflowd.secrets"):
        renderer.render_run("m", "manual__20260101T000000Z")
        renderer.render_run("m", "manual__20260101T000000Z")
    assert "old=first-value new=***" in page.read_text()
    assert len([r for r in caplog.records if "keeping the values read before" in r.getMessage()]) == 1


def test_next_run_is_kept_until_it_passes_and_follows_a_new_version(make_repo, tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    daily = '[dag]\nschedule = "@daily"\nstart_date = 2026-01-01\n\n[tasks.a]\ncmd = "echo a"\n'
    repo = make_repo({"dags/umbrella.toml": daily})
    now = [NOW]
    renderer = Site(state, site, clock=lambda: now[0])

    def next_run() -> str:
        return json.loads((site / "status.json").read_text())["dags"][0]["next_run"]

    with Repo(repo.path) as git_repo:
        record_snapshot(state, git_repo.load(repo.head()))
        renderer.render_all()
        assert next_run() == "2026-02-02T00:00:00Z"
        now[0] = datetime(2026, 2, 1, 23, 59, tzinfo=timezone.utc)
        renderer.render_all()
        assert next_run() == "2026-02-02T00:00:00Z"
        now[0] = datetime(2026, 2, 2, 0, 0, tzinfo=timezone.utc)  # the tick itself: the next is strictly after
        renderer.render_all()
        assert next_run() == "2026-02-03T00:00:00Z"
        now[0] = NOW  # a clock set back: asked again, not the later cached tick
        renderer.render_all()
        assert next_run() == "2026-02-02T00:00:00Z"
        repo.commit({"dags/umbrella.toml": daily.replace("@daily", "@hourly")}, message="hourly")
        changes = record_snapshot(state, git_repo.load(repo.head()))
    renderer.render_dags([c.dag_id for c in changes])
    assert next_run() == "2026-02-01T13:00:00Z"


COMMANDS_DAG = '''[dag]
params = { token = "hunter2-secret" }

[tasks.fetch]
cmd = "echo fetching {{ ds }} with {{ params.token }}"

[tasks.load]
argv = ["printf", "%s\\\\n", "{{ dag_id }} day"]
deps = ["fetch"]

[tasks.fail]
cmd = "exit 3"

[tasks.after]
cmd = "echo never {{ ds }}"
deps = ["fail"]

[tasks.report]
call = "jobs:main"
deps = ["fail"]
'''


def test_pages_show_each_command_as_it_ran_and_masked_or_else_the_template(make_repo, cli, tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    repo = make_repo({"dags/cmds.toml": COMMANDS_DAG})
    done = cli("--repo", str(repo.path), "--state", str(state), "run", "cmds", "--date", "2026-03-04", "--no-render")
    assert done.returncode == 1, done.stderr  # `fail` fails, `after` is never run
    records = [r for p in (state / "runs/cmds").glob("*.jsonl") for r in journal.read(p)]
    started = {r["task"]: r for r in records if r["event"] == "task_started"}
    assert started["fetch"]["cmd"] == "echo fetching 2026-03-04 with hunter2-secret"
    assert started["load"]["argv"] == ["printf", "%s\\n", "cmds day"]
    Site(state, site, secrets={"TOKEN": "hunter2-secret"}, clock=fixed_clock).render_all()
    run_dir = next((site / "dags/cmds/runs").iterdir())
    page = (run_dir / "index.html").read_text()
    assert "echo fetching 2026-03-04 with ***" in page and "hunter2-secret" not in page
    assert "printf &#39;%s\\n&#39; &#39;cmds day&#39;" in page  # argv quoted as a shell would need it
    assert re.search(r'<code class="cmd template"[^>]*>echo never \{\{ ds \}\}</code>', page)  # never started
    assert '<code class="cmd">call jobs:main</code>' in page  # not templated: no template style
    log_page = (run_dir / "fetch.1.html").read_text()
    assert "<dt>Command</dt>" in log_page and "echo fetching 2026-03-04 with ***" in log_page
    assert "hunter2-secret" not in log_page


def test_a_param_holding_a_secret_is_masked_in_the_params_as_in_the_command(make_repo, cli, tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    repo = make_repo({"dags/cmds.toml": COMMANDS_DAG.replace('"hunter2-secret"', '"placeholder"')})
    done = cli("--repo", str(repo.path), "--state", str(state), "run", "cmds", "--param", "token=hunter2-secret", "--no-render")
    assert done.returncode == 1, done.stderr
    Site(state, site, secrets={"TOKEN": "hunter2-secret"}, clock=fixed_clock).render_all()
    page = (next((site / "dags/cmds/runs").iterdir()) / "index.html").read_text()
    assert '<code class="override" title="set by --param">token=***</code>' in page and "with ***" in page
    assert "hunter2-secret" not in page


def test_a_retired_dag_names_the_commit_that_deleted_its_file(make_repo, tmp_path):
    state, site = tmp_path / "state", tmp_path / "site"
    repo = make_repo({"dags/a.toml": '[tasks.t]\ncmd = "echo a"\n', "dags/b.toml": '[tasks.t]\ncmd = "echo b"\n'})
    with Repo(repo.path) as git_repo:
        record_snapshot(state, git_repo.load(repo.head()))
        last_with_it = repo.head()
        deleted_at = repo.commit(message="retire b", remove=("dags/b.toml",))
        record_snapshot(state, git_repo.load(deleted_at))
    Site(state, site, clock=fixed_clock).render_all()
    banner = re.search(r'<div class="banner warn"><strong>Retired</strong>(.*?)</div>', (site / "dags/b/index.html").read_text())
    assert banner and deleted_at[:8] in banner.group(1) and last_with_it[:8] not in banner.group(1)


def resumed_a_day_later(state: Path) -> None:
    """A run whose `b` failed, resumed a day later, successful 4 seconds into the resume."""
    dag = make_dag("umbrella", {"a": [], "b": ["a"]})
    path = write_run(state, dag, "manual__20260101T000000Z", T0, {"a": ["success"], "b": ["failed"]})
    clock = [T0 + timedelta(days=1)]
    with journal.JournalWriter(path, clock=lambda: clock[0]) as writer:
        writer.append({"event": journal.RUN_RESUMED, "commit": "f1f1" * 10, "tasks": ["b"], "interrupted": []})
        writer.append({"event": journal.RUN_STARTED, "pid": 1, "host": "h"})
        clock[0] += timedelta(seconds=4)
        writer.append({"event": journal.RUN_FINISHED, "state": "success"})


def test_a_run_resumed_a_day_later_is_as_long_as_its_latest_execution(tmp_path, cli):
    """Its duration counted from the first start to the end: a resume a day after a failure
    made a seconds-long run '1d'. It counts the latest execution, as Airflow's after a clear,
    on the site and in `status` (whose detail names both starts)."""
    state, site = tmp_path / "state", tmp_path / "site"
    resumed_a_day_later(state)
    Site(state, site, clock=fixed_clock).render_all()
    page = (site / "dags/umbrella/runs/manual__20260101T000000Z/index.html").read_text()
    assert re.search(r"<dt>Duration</dt><dd>4s <span class=\"muted\">since the last resume", page), page
    listed = cli("--state", str(state), "status", "umbrella", cwd=tmp_path)
    assert re.search(r"manual__20260101T000000Z\s+success.*\s4s\s", listed.stdout), listed.stdout
    detail = cli("--state", str(state), "status", "umbrella", "manual__20260101T000000Z", cwd=tmp_path).stdout
    assert f"resumed 1 time(s), the latest execution started {(T0 + timedelta(days=1)).isoformat()}" in detail


def test_attempts_of_an_earlier_execution_are_faded_on_the_timeline_when_their_task_is_now_skipped_or_cleared(make_repo, cli, tmp_path):
    """`alert` (one_failed) ran and succeeded while `flaky` failed; the resume that fixed
    `flaky` skipped it. Its row said skipped, but its bar was drawn solid green, as if this
    execution had run it; the same for a task cleared and not resumed yet."""
    state, site, flag = tmp_path / "state", tmp_path / "site", tmp_path / "fixed"
    repo = make_repo({"dags/alerting.toml": f'[tasks.flaky]\ncmd = "test -f {flag}"\n\n'
                                            '[tasks.alert]\ncmd = "echo alert"\ndeps = ["flaky"]\ntrigger_rule = "one_failed"\n\n'
                                            '[tasks.after]\ncmd = "echo after"\ndeps = ["flaky"]\n'})
    common = ("--repo", str(repo.path), "--state", str(state), "--site", str(site))
    run_id = cli(*common, "run", "alerting").stdout.splitlines()[0]
    flag.touch()
    assert cli(*common, "resume", "alerting", run_id).returncode == 0
    assert cli(*common, "clear", "alerting", run_id, "--task", "after").returncode == 0
    assert cli(*common, "render").returncode == 0
    page = (site / f"dags/alerting/runs/{run_id}/index.html").read_text()
    gantt = page.split('id="gantt"')[1].split("</svg>")[0]
    bars = {(m["task"], int(m["n"])): "old" in m["cls"]
            for m in re.finditer(r'<rect class="bar (?P<cls>[^"]*)"[^>]*><title>(?P<task>\w+) · attempt (?P<n>\d+)', gantt)}
    assert bars == {("flaky", 1): True, ("flaky", 2): False, ("alert", 1): True, ("after", 1): True}
    assert re.search(r'<tr id="task-alert" data-task="alert" data-state="skipped">', page)


def test_status_json_runs_say_started_and_last_started_as_status_json_does(tmp_path, cli):
    """status.json's "started" was the latest execution's start (what the grid's duration
    bars count), while `gitflowd status --json`, the run page and the README use "started"
    for the first start: a script reading both saw two starts for one run."""
    state, site = tmp_path / "state", tmp_path / "site"
    resumed_a_day_later(state)
    Site(state, site, clock=fixed_clock).render_all()
    published = json.loads((site / "status.json").read_text())["dags"][0]["runs"][0]
    listed = json.loads(cli("--state", str(state), "status", "--json", cwd=tmp_path).stdout)[0]
    for key in ("started", "last_started", "ended", "logical_date"):
        assert datetime.fromisoformat(published[key].replace("Z", "+00:00")) == datetime.fromisoformat(listed[key]), key
    assert published["started"] != published["last_started"]
    assert {"run_id", "kind", "state", "commit", "url"} <= set(published)


def test_a_cleared_run_waiting_for_resume_is_not_shown_as_running_nor_refreshed(make_repo, cli, tmp_path):
    """A run cleared and not resumed waits for a person (`status`: "queued (cleared: resume
    it)"), but the index said "1 running" and every page of it reloaded itself every 5 s,
    forever, while its duration bar grew with the clock."""
    state, site = tmp_path / "state", tmp_path / "site"
    repo = make_repo({"dags/c.toml": '[tasks.a]\ncmd = "echo a"\n\n[tasks.b]\ncmd = "echo b"\ndeps = ["a"]\n'})
    common = ("--repo", str(repo.path), "--state", str(state), "--site", str(site))
    run_id = cli(*common, "run", "c").stdout.splitlines()[0]
    assert cli(*common, "clear", "c", run_id, "--task", "b").returncode == 0
    assert cli(*common, "render").returncode == 0
    pages = [site / "index.html", site / "dags/c/index.html", site / f"dags/c/runs/{run_id}/index.html"]
    for page in pages:
        html = page.read_text()
        assert 'http-equiv="refresh"' not in html and "live ·" not in html, page
    assert '<span class="badge s-running">' not in pages[0].read_text()  # no "1 running"
    run_page = pages[2].read_text()
    assert f"gitflowd resume c {run_id}" in run_page and 'data-state="queued"' in run_page
    assert "<dt>Duration</dt><dd>—" in run_page  # as `status` says "-": not a time that grows at every render
    cell = re.search(rf'<a class="sq s-pending" data-task="b" data-state="pending" data-run="{run_id}" href="([^"]+)" title="([^"]+)"',
                     pages[1].read_text())
    assert cell and cell.group(1).endswith(f"runs/{run_id}/index.html") and "attempt" not in cell.group(2), cell
    published = json.loads((site / "status.json").read_text())["dags"][0]
    assert published["running"] == 0 and published["runs"][0]["cleared"] is True
    assert json.loads(cli(*common, "status", "--json").stdout)[0]["cleared"] is True
    assert cli(*common, "resume", "c", run_id).returncode == 0
    assert json.loads((site / "status.json").read_text())["dags"][0]["runs"][0]["cleared"] is False


def test_a_dag_outside_utc_shows_its_logical_date_in_its_own_zone_beside_utc(make_repo, cli, tmp_path):
    """A run for 2026-11-22 of an Asia/Seoul DAG (its tasks got ds=2026-11-22) was shown only
    as 'Logical date 2026-11-21 15:00:00': the day the user asked for appeared nowhere."""
    state, site = tmp_path / "state", tmp_path / "site"
    repo = make_repo({"dags/seoul.toml": '[dag]\nschedule = "@daily"\ntimezone = "Asia/Seoul"\nstart_date = 2026-11-01\n\n'
                                         '[tasks.a]\ncmd = "echo {{ ds }}"\n',
                      "dags/utc.toml": '[dag]\nschedule = "@daily"\n\n[tasks.a]\ncmd = "echo {{ ds }}"\n'})
    common = ("--repo", str(repo.path), "--state", str(state), "--site", str(site))
    seoul = cli(*common, "run", "seoul", "--date", "2026-11-22").stdout.splitlines()[0]
    utc = cli(*common, "run", "utc", "--date", "2026-11-22").stdout.splitlines()[0]
    page = (site / f"dags/seoul/runs/{seoul}/index.html").read_text()
    logical = re.search(r"<dt>Logical date</dt><dd>(.*?)</dd>", page).group(1)
    assert logical.startswith("2026-11-21 15:00:00") and "2026-11-22 00:00:00 KST" in logical, logical
    interval = re.search(r"<dt>Data interval</dt><dd>(.*?)</dd>", page).group(1)
    assert "2026-11-21 00:00:00 KST" in interval and interval.endswith("2026-11-22 00:00:00 KST</span>"), interval
    page = (site / f"dags/utc/runs/{utc}/index.html").read_text()
    assert re.search(r"<dt>Logical date</dt><dd>2026-11-22 00:00:00</dd>", page)  # UTC once, not twice
    next_run = re.search(r"<dt>Next run</dt><dd>(.*?)</dd>", (site / "dags/seoul/index.html").read_text()).group(1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d 15:00:00 · <span class=\"muted local\" title=\"Asia/Seoul\">\S+ 00:00:00 KST</span>", next_run), next_run
    assert "KST" in re.search(r'<tr class="dagrow" data-dag="seoul">.*?</tr>', (site / "index.html").read_text(), re.S).group(0)


def test_the_run_page_shows_every_param_the_tasks_got_not_only_the_overrides(make_repo, cli, tmp_path):
    """The journal keeps a run's --param overrides; the page showed only those, so a run with
    the defaults showed no params at all, and one with an override hid the others."""
    state, site = tmp_path / "state", tmp_path / "site"
    repo = make_repo({"dags/p.toml": '[dag]\nparams = { region = "<b>seoul</b>", days = 3, dry = false, tags = ["a", "b"] }\n\n'
                                      '[tasks.a]\ncmd = "echo {{ params.region }} {{ params.days }}"\n'})
    common = ("--repo", str(repo.path), "--state", str(state), "--site", str(site))
    plain = cli(*common, "run", "p").stdout.splitlines()[0]
    changed = cli(*common, "run", "p", "--param", "days=5").stdout.splitlines()[0]

    def params(run_id: str) -> list[str]:
        page = (site / f"dags/p/runs/{run_id}/index.html").read_text()
        return re.findall(r"<code[^>]*>([^<]*)</code>", re.search(r"<dt>Params</dt><dd>(.*?)</dd>", page).group(1))

    expected = ["region=&lt;b&gt;seoul&lt;/b&gt;", "days=3", "dry=false", 'tags=[&#34;a&#34;, &#34;b&#34;]']
    assert params(plain) == expected
    assert params(changed) == [p.replace("days=3", "days=5") for p in expected]
    page = (site / f"dags/p/runs/{changed}/index.html").read_text()
    assert re.search(r'<code class="override" title="set by --param">days=5</code>', page)


def test_a_foreground_run_refreshes_the_pages_of_other_dags_its_reload_changed(make_repo, cli, tmp_path):
    """`run` records the head in the registry, as the daemon does, but re-rendered only its
    own DAG: after a commit that deleted b and broke c, `run a` left b's page without
    'retired' and c's without its error, while the index said both."""
    state, site = tmp_path / "state", tmp_path / "site"
    task = '[tasks.t]\ncmd = "echo t"\n'
    repo = make_repo({"dags/a.toml": task, "dags/b.toml": task, "dags/c.toml": task})
    common = ("--repo", str(repo.path), "--state", str(state), "--site", str(site))
    for dag in ("a", "b", "c"):
        assert cli(*common, "run", dag).returncode == 0
    repo.commit({"dags/c.toml": "[tasks.t\n"}, remove=("dags/b.toml",), message="drop b, break c")
    assert cli(*common, "run", "a").returncode == 0
    assert "Retired" in (site / "dags/b/index.html").read_text()
    assert "invalid TOML" in (site / "dags/c/index.html").read_text()
    untouched = {p: p.stat().st_mtime_ns for p in (site / "dags/b/index.html", site / "dags/c/index.html")}
    assert cli(*common, "run", "a").returncode == 0  # nothing changed for b and c since: not rewritten
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched


def test_clear_and_stop_in_the_foreground_update_the_site_as_run_and_resume_do(make_repo, cli, tmp_path):
    """`clear` and a `stop` of a run whose runner died changed the journal but not the site:
    the cleared run still read 'success' and the stopped one 'running' (refreshing every 5 s)
    until something else rendered."""
    import os
    import signal
    import sys

    from conftest import GIT_ENV

    state, site = tmp_path / "state", tmp_path / "site"
    repo = make_repo({"dags/c.toml": '[tasks.a]\ncmd = "echo a"\n\n[tasks.b]\ncmd = "echo b"\ndeps = ["a"]\n',
                      "dags/s.toml": '[tasks.wait]\ncmd = "echo waiting; sleep 300"\n'})
    common = ("--repo", str(repo.path), "--state", str(state), "--site", str(site))
    run_id = cli(*common, "run", "c").stdout.splitlines()[0]
    assert cli(*common, "clear", "c", run_id, "--task", "b").returncode == 0
    page = (site / f"dags/c/runs/{run_id}/index.html").read_text()
    assert re.search(r'<h1 data-run="[^"]+" data-state="queued">', page) and 'data-waiting="cleared"' in page

    runner = subprocess.Popen([sys.executable, "-m", "gitflowd", *common, "run", "s"], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **GIT_ENV})
    try:
        stopped = runner.stdout.readline().strip()
        run_page = site / f"dags/s/runs/{stopped}/index.html"
        deadline = time.monotonic() + 60
        while not (run_page.is_file() and 'data-task="wait" data-state="running"' in run_page.read_text()):
            assert time.monotonic() < deadline, "the run page never showed the running task"
            time.sleep(0.05)
        runner.send_signal(signal.SIGKILL)  # the runner dies; its task lives on as an orphan
        runner.wait(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    done = cli(*common, "stop", "s", stopped)
    assert done.returncode == 0, done.stderr  # kills the orphan
    page = run_page.read_text()
    assert re.search(r'<h1 data-run="[^"]+" data-state="interrupted">', page) and 'http-equiv="refresh"' not in page


def test_render_after_a_runner_died_says_so_instead_of_showing_a_live_run(make_repo, cli, tmp_path):
    """A foreground run killed with SIGKILL stays 'running' in its journal (`status` says
    'running (runner gone: resume it)'); `gitflowd render` showed it as live: '1 running' on
    the index and pages reloading every 5 s for a run nothing would ever change."""
    import os
    import signal
    import sys

    from conftest import GIT_ENV

    state, site = tmp_path / "state", tmp_path / "site"
    repo = make_repo({"dags/s.toml": '[tasks.wait]\ncmd = "echo waiting; sleep 300"\n\n[tasks.after]\ncmd = "true"\ndeps = ["wait"]\n'})
    common = ("--repo", str(repo.path), "--state", str(state), "--site", str(site))
    runner = subprocess.Popen([sys.executable, "-m", "gitflowd", *common, "run", "s"], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **GIT_ENV})
    run_id = runner.stdout.readline().strip()
    try:
        run_page = site / f"dags/s/runs/{run_id}/index.html"
        deadline = time.monotonic() + 60
        while not (run_page.is_file() and 'data-task="wait" data-state="running"' in run_page.read_text()):
            assert time.monotonic() < deadline, "the run page never showed the running task"
            time.sleep(0.05)
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=60)
        assert cli(*common, "render").returncode == 0
        pages = [site / "index.html", site / "dags/s/index.html", run_page]
        for page in pages:
            assert 'http-equiv="refresh"' not in page.read_text(), page
        assert '<span class="badge s-running">' not in pages[0].read_text()
        html = run_page.read_text()
        assert 'data-waiting="runner-gone"' in html and f"gitflowd resume s {run_id}" in html
        assert json.loads((site / "status.json").read_text())["dags"][0]["running"] == 0
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        cli(*common, "stop", "s", run_id)  # ends the orphaned task


def test_a_huge_last_line_is_shown_cut_rather_than_dropped_and_sizes_read_plainly(tmp_path):
    """The tail of a large log starts at a line start; when one line filled the whole tail (a
    3 MB JSON dump), the page dropped it all and read 'Showing the last 0 KiB of 2.9 MiB'
    above one short line; and a 526 KiB log read '... of 0.5 MiB'."""
    state, site = tmp_path / "state", tmp_path / "site"
    dag = make_dag("big", {"dump": [], "chatty": []})
    logs = {("dump", 1): "start\n" + "a" * 3_000_000 + "\ntail\n", ("chatty", 1): "".join(f"line {i}\n" for i in range(50_000))}
    write_run(state, dag, "manual__20260101T000000Z", T0, {"dump": ["success"], "chatty": ["success"]}, logs=logs)
    Site(state, site, clock=fixed_clock).render_all()
    run_dir = site / "dags/big/runs/manual__20260101T000000Z"
    page = (run_dir / "dump.1.html").read_text()
    shown = re.search(r'<pre class="log">(.*?)</pre>', page, re.S).group(1)
    assert shown.startswith("…aaaa") and shown.endswith("a\ntail\n") and len(shown) > 200_000
    assert "Showing the last 256 KiB of 2.9 MiB." in page
    page = (run_dir / "chatty.1.html").read_text()
    shown = re.search(r'<pre class="log">(.*?)</pre>', page, re.S).group(1)
    assert shown.startswith("line ") and shown.endswith("line 49999\n")  # from a line start, as before
    assert re.search(r"Showing the last 25\d KiB of 5\d\d KiB\.", page), re.search(r"Showing[^.]*\.", page).group(0)


def test_a_run_left_off_the_site_for_a_damaged_journal_is_named_on_the_index(tmp_path):
    """`render` says on stderr that a journal could not be read and leaves its run off the
    site; someone browsing the site had no way to know a run was missing."""
    state, site = tmp_path / "state", tmp_path / "site"
    damaged_state(state)
    renderer = Site(state, site, clock=fixed_clock)
    renderer.render_all()
    banner = re.search(r'<div class="banner err" data-unreadable="1"[^>]*>(.*?)</div>', (site / "index.html").read_text(), re.S)
    assert banner and "scheduled__20260101T000000Z.jsonl" in banner.group(1) and "corrupt journal record" in banner.group(1)
    unreadable = json.loads((site / "status.json").read_text())["unreadable_runs"]
    assert len(unreadable) == 1 and "corrupt journal record" in unreadable[0]
    good_runs(state, 1, dag_id="other")
    renderer.render_run("other", "scheduled__20260101T000000Z")  # an incremental render keeps saying it
    assert 'data-unreadable="1"' in (site / "index.html").read_text()


@pytest.mark.parametrize("name,damage", [("umbrella/runs.json", '[["a run id", "too few fields"]]'),
                                         ("umbrella/runs.json", '{"not": "a list"}'), ("umbrella/runs.json", "[null]"),
                                         ("index.json", "[]"), ("index.json", '{"umbrella": {"recent": [[1]]}}')])
def test_a_site_cache_of_the_wrong_shape_is_rebuilt_not_a_crash(tmp_path, name, damage):
    """Only unreadable JSON counted as a missing cache: valid JSON of another shape (a hand
    edit, a file from another gitflowd) raised a TypeError from every incremental render."""
    state, site = tmp_path / "state", tmp_path / "site"
    good_runs(state, 2, tasks={"a": []})
    renderer = Site(state, site, clock=fixed_clock)
    renderer.render_all()
    (site / ".cache/v4" / name).write_text(damage)
    logical = T0 + timedelta(days=30)
    write_run(state, make_dag("umbrella", {"a": []}), f"scheduled__{logical:%Y%m%dT%H%M%SZ}", logical, {"a": ["success"]})
    renderer.render_run("umbrella", f"scheduled__{logical:%Y%m%dT%H%M%SZ}")
    assert (site / "dags/umbrella/index.html").read_text().count('<th data-run="') == 3
    crawl(site)


def _normalised(site: Path) -> dict[str, str]:
    """Every page and status.json of a site, without the moment it was rendered."""
    pages = {}
    for path in sorted(site.rglob("*")):
        if path.suffix in (".html", ".json") and ".cache" not in path.parts:
            text = re.sub(r"rendered [0-9: -]+ UTC", "", path.read_text())
            pages[str(path.relative_to(site))] = re.sub(r'"generated": "[^"]*"', "", text)
    return pages


def test_a_site_kept_up_by_the_commands_equals_a_full_render_of_the_same_state(make_repo, cli, tmp_path):
    """The commands render incrementally (a run's pages, its DAG, the index); after runs,
    a backfill, a fix-forward resume that changed the task graph, a clear and a commit that
    deleted one DAG and broke another, every page must read as `render` writes it from scratch
    (a cleared run's duration and other DAGs' pages after a reload once differed)."""
    flag = tmp_path / "fixed"
    a = (f'[dag]\nschedule = "@daily"\nstart_date = 2026-11-01\n\n[tasks.x]\ncmd = "echo x"\n\n'
         f'[tasks.y]\ncmd = "test -f {flag} && echo y"\ndeps = ["x"]\n\n'
         '[tasks.z]\ncmd = "echo z"\ndeps = ["y"]\ntrigger_rule = "all_done"\n')
    repo = make_repo({"dags/a.toml": a, "dags/b.toml": '[tasks.solo]\ncmd = "echo solo"\n', "dags/c.toml": '[tasks.c]\ncmd = "echo c"\n'})
    state, site = tmp_path / "state", tmp_path / "site"
    common = ("--repo", str(repo.path), "--state", str(state), "--site", str(site))
    first = cli(*common, "run", "a").stdout.splitlines()[0]
    cli(*common, "backfill", "a", "--start", "2026-11-10", "--end", "2026-11-11")
    cli(*common, "run", "b")
    cli(*common, "run", "c")
    flag.touch()
    repo.commit({"dags/a.toml": a + '\n[tasks.w]\ncmd = "echo w"\ndeps = ["z"]\n'}, message="add w")
    assert cli(*common, "resume", "a", first, "--rev", "HEAD").returncode == 0
    assert cli(*common, "backfill", "a", "--start", "2026-11-10", "--end", "2026-11-11", "--reprocess", "failed").returncode == 0
    repo.commit({"dags/c.toml": "[tasks.c\n"}, remove=("dags/b.toml",), message="drop b, break c")
    assert cli(*common, "run", "a").returncode == 0
    assert cli(*common, "clear", "a", first, "--task", "x").returncode == 0
    assert cli("--state", str(state), "--site", str(tmp_path / "full"), "render").returncode == 0
    kept, full = _normalised(site), _normalised(tmp_path / "full")
    assert set(full) <= set(kept)
    assert [p for p in full if kept[p] != full[p]] == []


def test_control_characters_from_the_toml_never_reach_a_page(make_repo, cli, tmp_path):
    """TOML strings may hold \\u0000 or \\u0007: a description, a param, a command with one
    put it raw into the pages (only logs were cleaned), and a NUL makes a page invalid HTML
    and a binary file to grep; they are shown as U+FFFD, as in logs."""
    state, site = tmp_path / "state", tmp_path / "site"
    repo = make_repo({"dags/n.toml": '[dag]\ndescription = "nul \\u0000 bell \\u0007 esc \\u001b[31m"\n'
                                     'params = { p = "a\\u0000b" }\n\n[tasks.t]\ncmd = "echo \'x\\u0007y\'"\n'})
    common = ("--repo", str(repo.path), "--state", str(state), "--site", str(site))
    assert cli(*common, "run", "n").returncode == 0
    pages = [p for p in site.rglob("*.html") if ".cache" not in p.parts]
    assert len(pages) >= 4
    for page in pages:
        text = page.read_bytes().decode()
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text), page
    assert "nul \ufffd bell \ufffd esc \ufffd[31m" in (site / "dags/n/index.html").read_text()
    assert "p=a\ufffdb" in next((site / "dags/n/runs").iterdir()).joinpath("index.html").read_text()


def test_a_log_tail_cut_inside_a_secret_shows_no_piece_of_it(tmp_path):
    """A tail that starts inside a line (one line fills it) may start inside a secret: the
    piece after the cut ('er2-secret') was shown in clear, as only whole values are masked.
    This matters for the log of an attempt still running, which is masked as it is shown."""
    log = tmp_path / "t.log"
    for after in range(80, 100):
        log.write_text("first line\n" + "a" * 300 + "hunter2-secret" + "b" * after)
        shown = read_log(log, ["hunter2-secret"], tail=100)
        assert shown.truncated and shown.text.startswith("…")
        for n in range(3, 14):
            assert "hunter2-secret"[-n:] not in shown.text.replace("b", "").replace("…", "").lstrip("\ufffd"), (after, shown.text)


@pytest.mark.parametrize("flag", ["--site", "--state"])
def test_render_refuses_an_empty_site_or_state_path_given_on_purpose(cli, tmp_path, flag):
    """`gitflowd render --site "$SITE"` with SITE unset rendered into the default site (or
    read the default state) without a word: another directory than the one asked for."""
    state = tmp_path / "state"
    failing_run(state)
    args = ["--state", str(state), "--site", str(tmp_path / "site")]
    args[args.index(flag) + 1] = ""
    done = cli(*args, "render", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert done.stderr.strip() == f"gitflowd: error: empty {flag} '': give a directory, or leave {flag} out for the default"
    assert not (tmp_path / "site").exists() and not (tmp_path / ".gitflowd").exists()


def test_the_reload_history_is_read_once_per_render_not_once_per_dag(make_repo, tmp_path, caplog):
    """Every DAG page read and parsed the whole reloads.jsonl again: a full render of N DAGs
    read it N times (a cost of DAGs x reloads), and a damaged record was warned about once
    per DAG."""
    import logging

    state, site = tmp_path / "state", tmp_path / "site"
    repo = make_repo({f"dags/d{i}.toml": f'[tasks.t]\ncmd = "echo {i}"\n' for i in range(5)})
    with Repo(repo.path) as git_repo:
        record_snapshot(state, git_repo.load(repo.head()))
        repo.commit({"dags/d0.toml": '[tasks.t]\ncmd = "echo changed"\n'}, message="change d0")
        record_snapshot(state, git_repo.load(repo.head()))
    reloads = state / "reloads.jsonl"
    first, *rest = reloads.read_bytes().splitlines(keepends=True)
    reloads.write_bytes(first + b"{damaged\n" + b"".join(rest))
    with caplog.at_level(logging.WARNING):
        Site(state, site, clock=fixed_clock).render_all()
    assert caplog.text.count("skipping a damaged reload record") == 1, caplog.text
    for i in range(5):
        rows = re.findall(r'<tr data-change="(\w+)">', (site / f"dags/d{i}/index.html").read_text())
        assert rows == (["changed", "added"] if i == 0 else ["added"]), (i, rows)

"""The daemon: commit -> reload; clock -> due runs; inbox -> requests; run end -> render.

Flow: `Daemon.serve()` takes STATE/daemon.lock -> `start()` opens the repository, starts
the watcher, reloads the branch head, resumes unfinished runs (crash = resume), hands the
whole site's render to the site thread (site_worker.py: the loop never waits for a render)
and tells systemd READY=1 -> then `loop()` repeats until a stop:
  1. drain wake-ups (watcher, finished runs, signals: handlers only set flags);
  2. a git event starts a burst; once it has gone quiet, `reload()` reads the head once;
  3. inbox requests are answered (requests.py), in arrival order;
  4. finished runs are collected, due ticks become scheduled runs (scheduler.py) and
     queued runs start as `max_active_runs` allows (pool.py);
  5. the watchdog is fed; `loop()` returns how long to sleep until the next deadline
     (tick, burst end, watchdog ping, grace end) and `serve()` sleeps on the Waker.
SIGTERM/SIGINT: `Stopping` (stopping.py) stops scheduling and tells running runs to start
nothing new; after `grace` seconds (or a second signal) they are interrupted (task groups
ended, recorded `interrupted`) and noted for the next start; once every run has ended the
daemon exits 0.

`loop(now=...)` takes the wall-clock time from the caller, so tests drive schedules with a
controlled clock while the repository, state and processes stay real.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gitflowd import checkouts, inbox, registry
from gitflowd.dag import Dag
from gitflowd.errors import GitflowdError, RepoError
from gitflowd.follow import REPO_RETRY, Follower, no_commits_yet
from gitflowd.launch import Launcher
from gitflowd.lock import StateLock
from gitflowd.notify import Notifier
from gitflowd.pool import Limiter, RunPool
from gitflowd.repo import Snapshot
from gitflowd.requests import Requests
from gitflowd.runs import kill_orphans
from gitflowd.scheduler import Scheduler
from gitflowd.secrets import SecretsFile
from gitflowd.site import Site
from gitflowd.site_listener import SiteListener
from gitflowd.site_worker import SiteWorker
from gitflowd.state import RunStatus
from gitflowd.statedir import StateDir
from gitflowd.stopping import Stopping, take_noted
from gitflowd.watch import GIT, INBOX, Burst, Waker, Watcher

log = logging.getLogger(__name__)

RUN_END = "run-end"
MAX_SLEEP = 300.0  # re-read the wall clock at least this often (clock jumps, suspend)
KILL_GRACE = 10.0  # SIGTERM -> SIGKILL for a task group being ended
START_EXTENSION = 30.0  # seconds more start time asked for while a long start makes progress
PRUNE_AFTER = 600.0  # after a run ends, delete the checkouts no run needs within this many seconds
PRUNE_AT_ONCE = 20  # checkouts deleted in one loop pass (a large tree takes a while)
KEEP_CHECKOUTS = 7 * 86400.0  # ... if made longer ago than this (a failed run is resumed soon, or fixed forward)


@dataclass(frozen=True)
class Options:
    repo: Path
    state: Path
    site: Path
    branch: str | None = None
    parallelism: int = 8
    once: bool = False
    poll: float | None = None
    grace: float = 60.0
    secrets_file: str | None = None


class Daemon:
    """One daemon over one repository branch and one state directory."""

    def __init__(self, options: Options, notifier: Notifier | None = None, clock: Callable[[], datetime] | None = None):
        self.options = options
        self.notifier = notifier or Notifier(None)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.waker, self.burst = Waker(), Burst()
        self.state = StateDir(options.state)
        self.lock = StateLock(self.state.lock_path, "daemon")
        # read again when it changes: a rotated secret is masked from the next render on
        self.site = Site(options.state, options.site, secrets=SecretsFile(options.secrets_file) if options.secrets_file else {})
        self.site_listener = SiteListener(self.site)
        self.site_worker = SiteWorker(lambda render: self.site_listener.guard(render, "rendering the site"))
        self.follower = Follower(options.repo, options.branch, self.state.parse_cache, self.waker.wake, options.poll, self._kept)
        self.inbox_watcher = Watcher(None, None, self.state.inbox, self.waker.wake, options.poll, lock=self.state.lock_path)
        self.dags: dict[str, registry.DagEntry] = {}
        self.loaded: dict[str, Dag] = {}
        self.scheduler = Scheduler(self.state)
        self.launcher = Launcher(self.state, None, secrets_file=options.secrets_file, slots=Limiter(options.parallelism),
                                 parallelism=options.parallelism, listeners=lambda: [self.site_listener], kill_grace=KILL_GRACE)
        self.pool = RunPool(self.launcher.execute, self._max_active_runs, lambda: self.waker.wake(RUN_END))
        self.requests = Requests(options.state, self.launcher, self.pool, lambda: self.dags, self._progress,
                                 lambda dag_id, run_id: self._render(lambda: self.site.render_run(dag_id, run_id)))
        self.reload_requested = False
        self.stopping = Stopping(options.grace)  # SIGTERM/SIGINT: grace, then interrupt (stopping.py)
        self.unsuccessful = 0  # runs that ended failed (or could not execute) in this daemon's life
        self.once_since: datetime | None = None  # with `once`: the first scheduling pass, the ticks it runs
        self._waiting_said: dict[str, datetime] = {}  # DAG -> the tick said to wait for the repository
        self.next_ping = 0.0
        self.ready = False  # READY=1 sent: from then on, progress feeds the watchdog instead
        self._extend_at = 0.0
        self._inbox_dirty = True
        self._shown_queued: set[tuple[str, str]] = set()  # runs held back, already on the site as queued
        self.prune_after, self.keep_checkouts = PRUNE_AFTER, KEEP_CHECKOUTS
        self._prune_at: float | None = None  # when to delete unneeded checkouts (a run ended)

    # -- life cycle ---------------------------------------------------------------------

    def serve(self) -> int:
        """Run until stopped (with `once`: until the due runs ended); returns the exit code:
        0, or with `once` 1 when a run did not succeed."""
        self.lock.acquire()
        try:
            self._install_signals()
            self.start()
            while True:
                timeout = self.loop()
                if self.finished:
                    break
                self.waker.sleep(timeout)
            self.stopping.remember(self.state.root)
        finally:
            self.notifier.stopping("stopped")
            self.close()
        log.info("daemon stopped")
        if self.options.once and self.stopping.signum:  # cut short (a cron job's timeout): not "all succeeded"
            log.warning("stopped by %s before every due run ended", signal.Signals(self.stopping.signum).name)
            return 128 + self.stopping.signum
        if self.options.once and self.unsuccessful:
            log.warning("%d run(s) did not succeed", self.unsuccessful)
            return 1  # for cron: a failed run is worth a non-zero exit
        return 0

    def start(self) -> None:
        """Open the repository, watch it, load the head, resume unfinished runs."""
        self.state.inbox.mkdir(parents=True, exist_ok=True)
        inbox.prune_replies(self.state.root)
        for name in inbox.drop_stale_claims(self.state.root):
            log.warning("request %s was taken by a daemon that stopped before answering it; not carried out again", name)
        self.inbox_watcher.start()
        self._open_first()
        self.reload(self.clock(), render=False)  # the whole site is rendered once, below
        self.resume_unfinished()
        self._render(self.site.render_all)  # on the site thread: READY=1 does not wait for it
        self.notifier.ready(self.describe())
        self.ready = True
        repo = self.follower.repo
        following = repo.branch if repo else self.options.branch
        if following is None and repo is not None:  # a detached HEAD: `resolve` reads HEAD, wherever a checkout moves it
            log.warning("HEAD of %s is detached: following HEAD, not a branch; pass --branch B to follow one", self.options.repo)
        log.info("daemon ready (pid %d): repo %s, branch %s, state %s, site %s", os.getpid(), self.options.repo,
                 following or ("none (detached HEAD)" if repo else "the first one pushed"), self.options.state, self.options.site)

    def _open_first(self) -> None:
        """A wrong --repo or --branch is an error now, not a retry loop. A repository with no
        commits yet is not a mistake: the README's service is started before the first push,
        and failing then made `systemctl enable --now` report an error and systemd restart the
        daemon every 5 s until the push. It waits for the first commit instead (not `once`)."""
        try:
            self._open_repo(fail=True)
        except RepoError as exc:
            if self.options.once or not no_commits_yet(self.options.repo):
                raise
            log.warning("%s; waiting for the first commit (looking every %gs)", exc, REPO_RETRY)
            self.follower.problem = str(exc)
            self.follower.retry_later()

    def close(self) -> None:
        self._close_repo()
        self.inbox_watcher.stop()
        self.site_worker.close()
        self.site_listener.close()
        self.waker.close()
        self.notifier.close()
        self.lock.release()

    @property
    def finished(self) -> bool:
        return (self.stopping.begun or self.options.once) and self.pool.idle

    def describe(self) -> str:
        head = self.follower.head[:8] if self.follower.head else "no commit"
        return f"{len(self.dags)} DAG(s) at {head}; {len(self.pool.running)} run(s) running, {len(self.pool.queued)} queued"

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self.waker.signal_fd(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop_signal(self, signum: int, _frame: object) -> None:
        self.stopping.signal(signum)

    def _on_hup(self, signum: int, _frame: object) -> None:
        self.reload_requested = True

    # -- the loop -----------------------------------------------------------------------

    def loop(self, now: datetime | None = None) -> float:
        """One pass over everything that may need doing; returns seconds until the next deadline."""
        now = now or self.clock()
        mono = time.monotonic()
        self._take_wakeups(mono)
        self._keep_lock(mono)
        if self.stopping.requested and not self.stopping.begun:
            self.stopping.begin(self.pool, self.notifier)
        self.stopping.check(self.pool, mono)
        if self.follower.due(mono) and self._open_repo():
            self.follower.head = None
            self.reload(now)
        if self.burst.take(mono):
            self.reload(now)
        if self._inbox_dirty:
            self._inbox_dirty = False
            if self.inbox_watcher.renew_inbox():
                log.warning("the inbox %s was deleted or replaced: made and watched again", self.state.inbox)
            # Stopping, it still takes `stop` (that run is not resumed at the next start);
            # other requests wait, and their commands withdraw them when it exits.
            self.requests.handle_all(now, kinds=("stop",) if self.stopping.begun else None)
        self.collect_finished()
        self._prune_checkouts(mono)
        if not self.stopping.begun:
            self.schedule_due(now)
        self.pool.pump()
        self._render_queued()
        self._feed_watchdog(mono)
        return self._sleep_for(now, mono)

    def _keep_lock(self, mono: float) -> None:
        """The lock file deleted under the daemon (an `rm` of a lock that looked stale, a wiped
        state directory) keeps a second daemon or run out no more: take it again at once. If
        another process took it first, two would write one state: exit now, as a crash does
        (whoever resumes its runs kills its tasks), rather than write another record."""
        if not self.lock.lost():
            return
        try:
            self.lock.retake()
        except GitflowdError as exc:
            log.critical("%s was deleted while this daemon held it, and another process took it: %s; exiting at once",
                         self.state.lock_path, exc)
            os._exit(1)
        log.warning("%s was deleted while this daemon held it: locked again (never delete it: it keeps a second "
                    "daemon or run out of the state directory)", self.state.lock_path)
        if not (self.state.root / registry.REGISTRY_FILE).exists():  # the state directory was wiped
            self.follower.head = None  # record the DAGs again at once, and the site with what is left
            self.burst.note(mono)
            self._render(self.site.render_all)

    def _render_queued(self) -> None:
        """A run held back (max_active_runs, --parallelism) is on the site as queued at once,
        not only once it starts (its engine's listener renders it from then on)."""
        queued = {(job.dag_id, job.run_id) for job in self.pool.queued}
        for dag_id, run_id in sorted(queued - self._shown_queued):
            self._render(lambda d=dag_id, r=run_id: self.site.render_run(d, r))
        self._shown_queued = queued

    def _take_wakeups(self, mono: float) -> None:
        if self.reload_requested:
            self.reload_requested, self.follower.head = False, None
            self.burst.note(mono)
        for reason in self.waker.drain():
            if reason == GIT:
                self.burst.note(mono)
            elif reason == INBOX:
                self._inbox_dirty = True

    def _sleep_for(self, now: datetime, mono: float) -> float:
        deadlines = [MAX_SLEEP]
        prune = self._prune_at if self.pool.idle else None  # a busy pool: a run's end wakes the loop
        for moment in (self.burst.deadline(), self.follower.retry_at, self.stopping.grace_end(), prune,
                       self.next_ping if self.notifier.watchdog_interval else None):
            if moment is not None:
                deadlines.append(moment - mono)
        upcoming = self.next_due(now) if not self.stopping.begun else None
        if upcoming is not None:
            deadlines.append((upcoming - now).total_seconds())
        return max(0.0, min(deadlines))

    def _progress(self) -> None:
        """Long work in the loop's thread (resuming thousands of unfinished runs at start, a
        backfill of a year of hourly ticks: 5 ms a run) is busy, not hung: before READY=1 ask
        systemd for more start time, after it feed the watchdog (which killed the daemon in the
        middle of such a backfill, and restarted it into the same long start)."""
        mono = time.monotonic()
        if self.ready:
            self._feed_watchdog(mono)
        elif mono >= self._extend_at:
            self.notifier.extend_timeout(START_EXTENSION)
            self._extend_at = mono + START_EXTENSION / 3

    def _feed_watchdog(self, mono: float) -> None:
        if self.notifier.watchdog_interval and mono >= self.next_ping:
            self.notifier.watchdog()
            self.next_ping = mono + self.notifier.watchdog_interval

    # -- reload -------------------------------------------------------------------------

    def reload(self, now: datetime, render: bool = True) -> None:
        """Load the head of the branch if it moved; record it; re-render what changed."""
        new = self.follower.read()
        if new is None:
            return
        sha, snapshot = new
        if snapshot.commit is not None:
            self.launcher.remember(snapshot.commit)
        try:
            changes = registry.record_snapshot(self.options.state, snapshot, now)
        except (GitflowdError, OSError) as exc:  # e.g. a full disk: try again at the next event or retry
            head = self.follower.head
            log.error("cannot record the reload of %s: %s; keeping the DAGs of %s", sha[:8], exc, head[:8] if head else "no commit")
            self.follower.retry_later()
            return
        self.follower.loaded(sha)
        previous, self.dags = self.dags, {k: v for k, v in registry.read_registry(self.options.state).dags.items() if not v.retired}
        self.loaded = {k: self.loaded[k] if k in previous and previous[k].blob == v.blob else v.load() for k, v in self.dags.items()}
        self._log_reload(snapshot, changes)
        changed = [c.dag_id for c in changes]
        if render:
            self._render(lambda: self.site.render_dags(changed))
        self.notifier.status(self.describe())

    def _log_reload(self, snapshot: Snapshot, changes: list[registry.DagChange]) -> None:
        commit = snapshot.commit
        summary = ", ".join(c.describe() for c in changes) or "no DAG changed"
        log.info("reloaded %s %r: %d DAG(s) active; %s", commit.sha if commit else "?", commit.subject if commit else "", len(self.dags), summary)
        kept = {problem: entry for entry in self.dags.values() for problem in entry.errors}
        for problem in snapshot.problems:  # only a DAG that had a valid version keeps one
            entry = kept.get(problem)
            if entry is not None:
                log.warning("load error: %s (DAG %s keeps running its last valid version, from %s)", problem, entry.id, entry.commit.short)
            else:
                log.warning("load error: %s (nothing runs from this file until it is fixed)", problem)

    def _open_repo(self, fail: bool = False) -> bool:
        opened = self.follower.open(fail)
        if opened:
            self.launcher.repo = self.follower.repo
        return opened

    def _close_repo(self) -> None:
        self.follower.close()
        self.launcher.repo = None

    def _kept(self) -> str:
        """What the daemon keeps running while the repository cannot be read."""
        head = self.follower.head
        return f"{len(self.dags)} DAG(s) of {head[:8]}" if head else "no DAGs"

    # -- schedules ----------------------------------------------------------------------

    def schedule_due(self, now: datetime) -> None:
        """Create the scheduled runs the scheduler says are due (with `once`: due when it began;
        ticks that come while it waits are the next start's, or it might never end)."""
        if self.options.once:
            self.once_since = self.once_since or now
            now = min(now, self.once_since)
        waiting: set[str] = set()
        for dag, tick in self.scheduler.due(self._versions(), self.pool.active, now):
            if dag.id in waiting:
                continue
            try:
                self.pool.add(self.launcher.prepare_new(dag, self.dags[dag.id].commit.sha, "scheduled", tick))
            except RepoError as exc:  # Git cannot be read now: the tick waits for it (a skip would lose it)
                waiting.add(dag.id)
                self.scheduler.forget(dag.id)
                self._say_waiting(dag.id, tick, exc)
            except (GitflowdError, OSError) as exc:  # the tick is skipped; the next one is tried as usual
                log.error("DAG %s: cannot start the run of %s: %s", dag.id, tick.isoformat(), exc)

    def _say_waiting(self, dag_id: str, tick: datetime, exc: RepoError) -> None:
        """Once per tick, not at every retry."""
        if self._waiting_said.get(dag_id) != tick:
            self._waiting_said[dag_id] = tick
            log.error("DAG %s: cannot start the run of %s now: %s; it starts when the repository can be read", dag_id, tick.isoformat(), exc)

    def next_due(self, now: datetime) -> datetime | None:
        return self.scheduler.next_due(self._versions(), now)

    def _versions(self) -> dict[str, tuple[Dag, str]]:
        return {dag_id: (dag, self.dags[dag_id].blob) for dag_id, dag in self.loaded.items()}

    def _max_active_runs(self, dag_id: str) -> int:
        dag = self.loaded.get(dag_id)
        return dag.max_active_runs if dag else 1

    # -- runs ---------------------------------------------------------------------------

    def resume_unfinished(self) -> None:
        """Runs left queued or running by a crash, and those a stop interrupted: continue them.
        A run queued by `clear` waits for the resume its user runs (DESIGN.md section 2)."""
        noted = take_noted(self.state.root)
        runs = [run for run in sorted(self.state.runs(), key=lambda r: r.logical_date)
                if (run.state in (RunStatus.QUEUED, RunStatus.RUNNING) and not run.cleared)
                or (run.state is RunStatus.INTERRUPTED and (run.dag_id, run.run_id) in noted)]
        if runs:
            self._progress()  # the orphans may take the whole kill grace
        kill_orphans(runs, self.launcher.kill_grace)
        for run in runs:
            self._progress()
            self._resume(run.dag_id, run.run_id)
        for path, error in self.state.broken:
            log.error("run journal %s cannot be read and is not resumed: %s", path, error)

    def _resume(self, dag_id: str, run_id: str) -> None:
        try:
            job = self.launcher.prepare_unfinished(self.state.load_run(dag_id, run_id))
        except (GitflowdError, OSError) as exc:
            log.error("run %s of DAG %s cannot be resumed now: %s", run_id, dag_id, exc)
            return
        if job is not None:
            self.pool.add(job)

    def collect_finished(self) -> None:
        finished = self.pool.collect()
        for item in finished:
            if item.status == "error":
                log.error("run %s of DAG %s stopped: %s", item.job.run_id, item.job.dag_id, item.error)
            else:
                log.info("run %s of DAG %s ended: %s", item.job.run_id, item.job.dag_id, item.status)
            if item.status == RunStatus.INTERRUPTED.value and self.stopping.begun and not item.cancelled:
                self.stopping.note(item.job.dag_id, item.job.run_id)
            elif item.status != RunStatus.SUCCESS.value:
                self.unsuccessful += 1
        if finished:
            self.notifier.status(self.describe())
            self._prune_at = self._prune_at or time.monotonic() + self.prune_after

    def _prune_checkouts(self, mono: float) -> None:
        """A checkout per commit that ran, kept forever, filled the disk of a long-lived daemon
        (a repository of 50 MB, ten commits a day: 180 GB a year). Once no run is queued or
        running (none then uses a checkout, and none can start meanwhile: the loop prepares
        runs), the checkouts made over a week ago are deleted, except the commits the loaded
        DAGs run from; a run that needs one again (a resume) gets it made again from Git."""
        if self._prune_at is None or mono < self._prune_at or not self.pool.idle:
            return
        self._prune_at = None
        keep = {entry.commit.sha for entry in self.dags.values()} | {self.follower.head or ""}
        try:
            removed = checkouts.prune(self.state.checkouts, keep, self.keep_checkouts, PRUNE_AT_ONCE)
        except OSError as exc:
            log.warning("cannot delete the checkouts no run needs in %s: %s", self.state.checkouts, exc)
            return
        if removed:
            log.info("deleted %d checkout(s) no run needs: %s", len(removed), " ".join(sha[:8] for sha in removed))
        if len(removed) == PRUNE_AT_ONCE:  # more to go: a pass that deleted them all could starve the watchdog
            self._prune_at = mono + 1.0

    def _render(self, render: Callable[[], object]) -> None:
        self.site_worker.submit(render)  # never in the loop: a long render must not hold it up


"""Local executor: real processes, process groups, logs on disk, no zombies, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from gitflowd.executors.base import Outcome, TaskSpec
from gitflowd.executors.local import LocalExecutor, find_run_processes, kill_process_groups


def _marked_pids(marker: str) -> list[int]:
    """Live (non-zombie) processes whose environment holds MARKER=<marker>."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        if f"MARKER={marker}".encode() in environ.split(b"\0") and stat[stat.rindex(")") + 2] != "Z":
            found.append(int(entry.name))
    return found


def _gone(marker: str, timeout: float = 20) -> bool:
    """True once no process carries the marker (a killed process takes a moment to go)."""
    end = time.monotonic() + timeout
    while _marked_pids(marker):
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def _run_all(executor: LocalExecutor, *specs: TaskSpec, timeout: float = 60) -> dict:
    for spec in specs:
        executor.submit(spec)
    done = {}
    end = time.monotonic() + timeout
    while executor.running or len(done) < len(specs):
        assert time.monotonic() < end, "tasks did not finish"
        for completion in executor.wait(5):
            done[completion.key] = completion
    return done


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.fixture(params=["popen", "posix_spawn"])
def start_mode(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Tasks whose cwd is the runner's own are started with posix_spawn, others with Popen:
    every test taking this fixture runs both ways."""
    if request.param == "posix_spawn":
        monkeypatch.chdir(tmp_path)
    return request.param


@pytest.fixture
def executor():
    ex = LocalExecutor(kill_grace=0.5)
    yield ex
    ex.shutdown()


def test_cmd_argv_and_call_write_their_logs(tmp_path: Path, start_mode: str, executor: LocalExecutor) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "jobs.py").write_text(textwrap.dedent("""
        import os, sys
        def hello():
            print("call in", os.getcwd(), os.environ["GREETING"], "path0", sys.path[0])
        def boom():
            raise RuntimeError("boom from call")
    """))
    logs = tmp_path / "logs"
    done = _run_all(
        executor,
        TaskSpec("sh", str(tmp_path), str(logs / "sh.log"), {"GREETING": "hi"}, cmd="echo $GREETING; echo err >&2; exit 3"),
        TaskSpec("argv", str(tmp_path), str(logs / "argv.log"), argv=("printf", "%s|", "a b", "$HOME")),
        TaskSpec("call", str(tmp_path), str(logs / "call.log"), {"GREETING": "hey"}, call="pkg.jobs:hello", sys_path=(str(tmp_path),)),
        TaskSpec("boom", str(tmp_path), str(logs / "boom.log"), call="pkg.jobs:boom", sys_path=(str(tmp_path),)),
    )
    assert done["sh"].outcome is Outcome.EXITED and done["sh"].exit_code == 3
    assert (logs / "sh.log").read_text() == "hi\nerr\n"
    assert done["argv"].exit_code == 0 and (logs / "argv.log").read_text() == "a b|$HOME|"
    assert done["call"].succeeded
    assert (logs / "call.log").read_text() == f"call in {tmp_path} hey path0 {tmp_path}\n"
    assert done["boom"].exit_code == 1 and "RuntimeError: boom from call" in (logs / "boom.log").read_text()
    assert _no_children_left()


def _call_specs(tmp_path: Path, module: str, source: str, *calls: str) -> list[TaskSpec]:
    (tmp_path / module).write_text(textwrap.dedent(source))
    return [TaskSpec(c, str(tmp_path), str(tmp_path / "logs" / f"{c}.log"), call=c, sys_path=(str(tmp_path),)) for c in calls]


def test_call_task_output_keeps_its_order_without_pythonunbuffered(tmp_path: Path) -> None:
    # Under systemd nothing sets PYTHONUNBUFFERED: stdout to a file was block-buffered, so a
    # task's prints reached its log after the traceback (stderr), or at its very end.
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    executor = LocalExecutor(kill_grace=0.5, environ=environ)
    try:
        done = _run_all(executor, *_call_specs(tmp_path, "steps.py", """
            import sys
            def go():
                print("one")
                print("two", file=sys.stderr)
                print("three")
                raise ValueError("four")
        """, "steps:go"))
    finally:
        executor.shutdown()
    assert done["steps:go"].exit_code == 1
    lines = (tmp_path / "logs" / "steps:go.log").read_text().splitlines()
    assert lines[:4] == ["one", "two", "three", "Traceback (most recent call last):"]
    assert lines[-1] == "ValueError: four" and "<string>" not in "".join(lines)  # no bootstrap frame


def test_call_task_async_function_is_awaited(tmp_path: Path, executor: LocalExecutor) -> None:
    # Called, an `async def` only returns a coroutine: the task "succeeded" without running.
    done = _run_all(executor, *_call_specs(tmp_path, "aio.py", """
        import asyncio
        async def ok():
            await asyncio.sleep(0)
            print("awaited")
        async def bad():
            raise SystemExit(4)
        async def boom():
            raise ValueError("bad data")
    """, "aio:ok", "aio:bad", "aio:boom"))
    assert done["aio:ok"].exit_code == 0 and (tmp_path / "logs" / "aio:ok.log").read_text() == "awaited\n"
    assert done["aio:bad"].exit_code == 4
    # Its traceback is the task's own: no asyncio runner frames, no bootstrap frame.
    assert done["aio:boom"].exit_code == 1
    lines = (tmp_path / "logs" / "aio:boom.log").read_text().splitlines()
    assert lines[0] == "Traceback (most recent call last):" and lines[1].endswith('aio.py", line 9, in boom')
    assert lines[2:] == ['    raise ValueError("bad data")', "ValueError: bad data"]


def test_call_task_sees_a_command_line_of_its_own(tmp_path: Path, executor: LocalExecutor) -> None:
    # A main() that parses its command line with argparse refused the bootstrap's arguments.
    done = _run_all(executor, *_call_specs(tmp_path, "cli.py", """
        import argparse, sys
        def main():
            parser = argparse.ArgumentParser()
            parser.add_argument("--day", default="today")
            print(sys.argv, parser.parse_args().day)
    """, "cli:main"))
    assert done["cli:main"].exit_code == 0
    assert (tmp_path / "logs" / "cli:main.log").read_text() == "['cli:main'] today\n"


def test_call_task_bad_targets_are_one_line(tmp_path: Path, executor: LocalExecutor) -> None:
    # `types` is loaded by every interpreter before the task: the repository's types.py was
    # never imported, and the task failed with "module 'types' has no attribute 'main'".
    (tmp_path / "types.py").write_text("def main():\n    print('mine')\n")
    (tmp_path / "time.py").write_text("def main():\n    print('mine')\n")  # a module built into Python: no __file__
    specs = _call_specs(tmp_path, "jobs.py", "import os\nLIMIT = 3\ndef f():\n    pass\n",
                        "types:main", "time:main", "jobs:nope", "nojobs:f", "jobs.sub:f", "jobs:LIMIT")
    done = _run_all(executor, *specs)
    logs = {key: (tmp_path / "logs" / f"{key}.log").read_text() for key in done}
    assert all(done[key].exit_code == 1 and text.count("\n") == 1 for key, text in logs.items()), logs
    assert "'types' is a module Python loaded before the task started" in logs["types:main"]
    assert "rename it" in logs["types:main"]
    assert logs["time:main"].startswith("gitflowd: cannot run call 'time:main': 'time' is a module Python loaded before the "
                                        "task started (built in)")
    assert logs["jobs:nope"] == "gitflowd: cannot run call 'jobs:nope': 'jobs' (jobs.py) has no attribute 'nope'\n"
    assert logs["nojobs:f"] == "gitflowd: cannot run call 'nojobs:f': no module named 'nojobs' (in the repository or Python's path)\n"
    assert "no module named 'jobs.sub'" in logs["jobs.sub:f"]
    assert logs["jobs:LIMIT"] == "gitflowd: cannot run call 'jobs:LIMIT': 'LIMIT' of 'jobs' is not a function but int 3\n"


def test_call_task_import_error_inside_the_module_keeps_its_traceback(tmp_path: Path, executor: LocalExecutor) -> None:
    done = _run_all(executor, *_call_specs(tmp_path, "needs.py", "import not_installed_lib_gitflowd\ndef f():\n    pass\n",
                                           "needs:f"))
    text = (tmp_path / "logs" / "needs:f.log").read_text()
    assert done["needs:f"].exit_code == 1
    assert 'needs.py", line 1, in <module>' in text and "No module named 'not_installed_lib_gitflowd'" in text
    assert "importlib" not in text


def test_a_task_that_cannot_start_is_an_error_with_its_reason_in_the_log(tmp_path: Path, start_mode: str, executor: LocalExecutor) -> None:
    done = _run_all(executor, TaskSpec("x", str(tmp_path), str(tmp_path / "x.log"), argv=("no-such-program-gitflowd",)),
                    TaskSpec("y", str(tmp_path / "missing-dir"), str(tmp_path / "y.log"), cmd="true"))
    assert done["x"].outcome is Outcome.ERROR and done["x"].exit_code is None
    assert "no-such-program-gitflowd" in (tmp_path / "x.log").read_text()
    assert done["y"].outcome is Outcome.ERROR and "missing-dir" in (tmp_path / "y.log").read_text()


def test_an_argv_program_that_cannot_start_says_why_in_repository_terms(tmp_path: Path, start_mode: str,
                                                                          executor: LocalExecutor) -> None:
    # The kernel's errno alone misleads: a script whose #! interpreter is missing is "No such
    # file or directory", though the script is right there.
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name, text, mode in (("plain.sh", "#!/bin/sh\necho hi\n", 0o644), ("noline.sh", "echo hi\n", 0o755),
                             ("interp.sh", "#!/no/such/interpreter-gitflowd\necho hi\n", 0o755)):
        (scripts / name).write_text(text)
        (scripts / name).chmod(mode)
    programs = {"path": "no-such-program-gitflowd", "gone": "scripts/gone.sh", "plain": "./scripts/plain.sh",
                "noline": "scripts/noline.sh", "interp": "scripts/interp.sh"}
    done = _run_all(executor, *(TaskSpec(k, str(tmp_path), str(tmp_path / f"{k}.log"), argv=(p,)) for k, p in programs.items()))
    hints = {"path": "(not found on the task's PATH)", "gone": "(no such file in the checkout of the run's commit)",
             "plain": "(the file is not executable: `git update-index --chmod=+x` it and commit, or put its interpreter first in argv)",
             "noline": "(a script needs a #! line such as #!/bin/sh, or its interpreter first in argv)",
             "interp": "(the interpreter its #! line names does not exist)"}
    for key, hint in hints.items():
        assert done[key].outcome is Outcome.ERROR and done[key].error.endswith(hint), (key, done[key].error)
        assert (tmp_path / f"{key}.log").read_text() == f"gitflowd: cannot start task: {done[key].error}\n"


def test_a_nul_character_in_a_command_is_an_error_not_a_crash(tmp_path: Path, start_mode: str, executor: LocalExecutor) -> None:
    done = _run_all(executor, TaskSpec("cmd", str(tmp_path), str(tmp_path / "cmd.log"), cmd="echo a\0b"),
                    TaskSpec("argv", str(tmp_path), str(tmp_path / "argv.log"), argv=("echo", "a\0b")),
                    TaskSpec("env", str(tmp_path), str(tmp_path / "env.log"), {"A": "a\0b"}, cmd="true"))
    for key in ("cmd", "argv", "env"):
        assert done[key].outcome is Outcome.ERROR and "NUL character" in (tmp_path / f"{key}.log").read_text(), key
    assert _no_children_left()


def test_timeout_kills_the_whole_group_even_when_sigterm_is_ignored(tmp_path: Path, start_mode: str, executor: LocalExecutor,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    marker = uuid.uuid4().hex
    cmd = "sleep 1000 & trap '' TERM; echo started; sleep 1000"
    env = {"MARKER": marker, "GITFLOWD_DAG": "d", "GITFLOWD_RUN_ID": "manual__1"}
    done = _run_all(executor, TaskSpec("t", str(tmp_path), str(tmp_path / "t.log"), env, cmd=cmd, timeout=0.3))
    assert done["t"].outcome is Outcome.TIMEOUT and done["t"].exit_code == -9
    assert f"task t of run manual__1 of DAG d ignored SIGTERM for {executor.kill_grace:g}s: SIGKILL" in caplog.text
    # The log says why it ends there (it said nothing: a timed-out task's log just stopped).
    assert (tmp_path / "t.log").read_text() == ("started\ngitflowd: timeout: the attempt ran longer than 0.3s; its process "
                                                "group got SIGTERM, then SIGKILL 0.5s later: it was still running\n")
    assert _gone(marker)
    assert _no_children_left()


def test_a_finished_task_leaves_no_background_process_behind(tmp_path: Path, start_mode: str, executor: LocalExecutor) -> None:
    marker = uuid.uuid4().hex
    done = _run_all(executor, TaskSpec("bg", str(tmp_path), str(tmp_path / "bg.log"), {"MARKER": marker}, cmd="sleep 1000 & exit 0"))
    assert done["bg"].succeeded
    assert _gone(marker)


def test_tasks_start_with_default_signal_handling(tmp_path: Path, start_mode: str, executor: LocalExecutor) -> None:
    # Python ignores SIGPIPE; a task must not inherit that, or `yes | head -1` makes `yes`
    # fail loudly with EPIPE ("Broken pipe" in the log) instead of ending quietly.
    assert signal.getsignal(signal.SIGPIPE) is signal.SIG_IGN  # the runner's own, as in production
    done = _run_all(executor, TaskSpec("p", str(tmp_path), str(tmp_path / "p.log"),
                                       cmd="grep SigIgn /proc/self/status; yes | head -1"))
    assert done["p"].succeeded
    ignored_line, rest = (tmp_path / "p.log").read_text().split("\n", 1)
    ignored = int(ignored_line.removeprefix("SigIgn:\t"), 16)
    assert rest == "y\n"  # nothing about a broken pipe
    # No signal a program may use is ignored (glibc's spawn ignores its own internal 32 and 33).
    assert ignored & ~(1 << 31 | 1 << 32) == 0, hex(ignored)


def test_cancel_terminates_and_reports_cancelled(tmp_path: Path, executor: LocalExecutor) -> None:
    marker = uuid.uuid4().hex
    executor.submit(TaskSpec("c", str(tmp_path), str(tmp_path / "c.log"), {"MARKER": marker}, cmd="sleep 1000 & sleep 1000"))
    assert executor.wait(0.05) == []
    executor.cancel("c")
    (completion,) = executor.wait(30)
    assert completion.outcome is Outcome.CANCELLED and completion.exit_code == -15
    assert (tmp_path / "c.log").read_text() == "gitflowd: stopped with its run; its process group got SIGTERM\n"
    assert _gone(marker)


def test_a_second_stop_kills_at_once_and_the_log_says_so(tmp_path: Path, executor: LocalExecutor) -> None:
    executor.submit(TaskSpec("s", str(tmp_path), str(tmp_path / "s.log"), cmd="trap '' TERM; echo up; sleep 1000"))
    _wait_for_text(tmp_path / "s.log", "up\n")
    executor.cancel("s")
    executor.kill("s")
    (completion,) = executor.wait(30)
    assert completion.outcome is Outcome.CANCELLED and completion.exit_code == -9
    assert (tmp_path / "s.log").read_text() == ("up\ngitflowd: stopped with its run; its process group got SIGTERM, "
                                                "then SIGKILL at once (stopped a second time, as by a second Ctrl-C)\n")


def _wait_for_text(path: Path, text: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not (path.exists() and path.read_text() == text):
        assert time.monotonic() < end, f"{path} never read {text!r}"
        time.sleep(0.01)


def test_a_task_killed_by_a_signal_says_so_in_its_log(tmp_path: Path, start_mode: str, executor: LocalExecutor) -> None:
    # An OOM kill or a crash: the exit code -9 was all there was to see.
    done = _run_all(executor, TaskSpec("k", str(tmp_path), str(tmp_path / "k.log"), cmd="printf partial; kill -9 $$"),
                    TaskSpec("x", str(tmp_path), str(tmp_path / "x.log"), cmd="echo fine; exit 3"))
    assert done["k"].exit_code == -9 and done["k"].outcome is Outcome.EXITED
    assert (tmp_path / "k.log").read_text() == "partial\ngitflowd: the task's process was killed by SIGKILL\n"
    assert (tmp_path / "x.log").read_text() == "fine\n"  # an exit of its own adds nothing


def test_wakeup_returns_a_blocked_wait_early(tmp_path: Path, executor: LocalExecutor) -> None:
    executor.submit(TaskSpec("s", str(tmp_path), str(tmp_path / "s.log"), cmd="sleep 1000"))
    executor.wakeup()
    assert executor.wait(None) == []  # returns because of the wakeup, not a completion
    assert executor.running == 1
    done = executor.shutdown()
    assert [c.outcome for c in done] == [Outcome.CANCELLED]


def test_systemd_notify_variables_never_reach_tasks(tmp_path: Path) -> None:
    environ = {**os.environ, "NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1", "KEEP": "yes"}
    executor = LocalExecutor(environ=environ)
    try:
        _run_all(executor, TaskSpec("e", str(tmp_path), str(tmp_path / "e.log"), cmd="env"))
    finally:
        executor.shutdown()
    text = (tmp_path / "e.log").read_text()
    assert "KEEP=yes" in text and "NOTIFY_SOCKET" not in text and "WATCHDOG_" not in text


def test_many_tasks_no_zombies_and_logs_never_pipes(tmp_path: Path, executor: LocalExecutor) -> None:
    specs = [TaskSpec(f"t{i}", str(tmp_path), str(tmp_path / f"{i}.log"), cmd=f"echo {i}; ls -l /proc/$$/fd/1") for i in range(40)]
    done = _run_all(executor, *specs)
    assert all(c.succeeded for c in done.values())
    for i in range(40):
        text = (tmp_path / f"{i}.log").read_text()
        assert text.startswith(f"{i}\n") and f"{i}.log" in text and "pipe:" not in text
    assert _no_children_left()


def test_gigantic_output_goes_to_the_file_with_flat_runner_memory(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import resource
        from gitflowd.executors.base import TaskSpec
        from gitflowd.executors.local import LocalExecutor
        ex = LocalExecutor()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ex.submit(TaskSpec("big", {str(tmp_path)!r}, {str(tmp_path / 'big.log')!r}, cmd="head -c 200000000 /dev/zero"))
        (done,) = ex.wait()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(done.exit_code, after - before)
        ex.shutdown()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    code, grown_kb = map(int, out.stdout.split())
    assert code == 0
    assert (tmp_path / "big.log").stat().st_size == 200_000_000
    assert grown_kb < 10_000  # the runner never held the output
    (tmp_path / "big.log").unlink()


def test_orphans_of_a_dead_runner_are_found_by_environment_and_killed(tmp_path: Path) -> None:
    env = {**os.environ, "GITFLOWD_DAG": "d", "GITFLOWD_RUN_ID": f"manual__{uuid.uuid4().hex}"}
    # an orphan group: its leader exited, a grandchild still runs in the group
    leader = subprocess.Popen(["/bin/sh", "-c", "trap '' TERM; sleep 1000 & echo $!"], env=env, start_new_session=True,
                              stdout=subprocess.PIPE, text=True)
    grandchild = int(leader.stdout.readline())
    leader.wait()
    groups = find_run_processes("d", env["GITFLOWD_RUN_ID"])
    assert groups == {leader.pid: [grandchild]}
    assert find_run_processes("d", "manual__other") == {}
    kill_process_groups(groups, grace=0.3)
    deadline = time.monotonic() + 30
    while find_run_processes("d", env["GITFLOWD_RUN_ID"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert find_run_processes("d", env["GITFLOWD_RUN_ID"]) == {}


def test_a_program_is_found_on_the_task_path_and_leads_its_own_group(tmp_path: Path, start_mode: str,
                                                                    executor: LocalExecutor) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "hello-gitflowd").write_text("#!/bin/sh\necho from tools; ps -o pgid= -p $$\n")
    (tools / "hello-gitflowd").chmod(0o755)
    spec = TaskSpec("t", str(tmp_path), str(tmp_path / "t.log"), {"PATH": f"{tools}:/usr/bin:/bin"}, argv=("hello-gitflowd",))
    started = executor.submit(spec)
    done = _run_all(executor)  # collects the task submitted above
    words = (tmp_path / "t.log").read_text().split()
    assert done["t"].succeeded and words[:2] == ["from", "tools"]
    assert int(words[2]) == started.pid  # setsid: the task leads its own process group
    assert started.host == __import__("socket").gethostname()  # what the journal's task_started says
    assert _no_children_left()

"""dev.py, the Quickstart's entry point: Ctrl-C and a failing step end with one line, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _dev(body: str) -> subprocess.Popen[str]:
    # SIGINT as a terminal gives it (a background job, as under CI, starts with it ignored)
    script = (f"import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); sys.path.insert(0, {str(ROOT)!r}); "
              f"import dev; sys.exit(dev.main(lambda: {body}))")
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def test_ctrl_c_during_a_step_exits_130_without_a_traceback() -> None:
    # A terminal's Ctrl-C reaches the whole foreground group: dev.py and the step it runs.
    # the step answers Ctrl-C as pytest does: its own words, then an exit code (no traceback of its own)
    step = 'import os, signal, time; signal.signal(signal.SIGINT, lambda *_: os._exit(2)); print(\"started\", flush=True); time.sleep(60)'
    proc = _dev(f"dev.sh(sys.executable, '-c', {step!r})")
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "started":  # the step's own line, not dev.py's "+ ...command..." echo of it
                break
        else:
            raise AssertionError(f"the step never started: {proc.communicate()[1]}")
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "dev.py: interrupted", err


def test_a_failing_step_is_one_line_with_its_exit_code() -> None:
    proc = _dev("dev.sh(sys.executable, '-c', 'raise SystemExit(3)')")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("dev.py: step failed (exit 3): "), err

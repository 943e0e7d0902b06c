"""Call tasks: `call = "module:function"` run in a fresh Python interpreter.

Flow: `call_argv(call, sys_path)` is the command line the local executor starts, like any
other task, in its own process group with its log as stdout and stderr: `python -c
<bootstrap> module:function CHECKOUT`. The bootstrap puts the checkout first on sys.path,
imports the module, calls the function and exits 0, 1 on an exception (its traceback in the
log), or what `sys.exit(n)` says.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

# A fresh interpreter runs `module:function` with the checkout first on sys.path. This is
# what the `spawn` multiprocessing context does, minus its re-import of the parent's
# __main__ (the CLI script, the daemon, pytest) in every child: slow, and unsafe.
# stdout is line-buffered as on a terminal: block-buffered (a file's default) it reached
# the log after a traceback printed on stderr, and `logs -f` saw nothing until 8 KiB.
# A module Python loaded before the task (`types`, `site`, ... : the repository's file of
# that name is never imported), a missing module or function are one line; `__import__`
# keeps importlib's own frames out of the traceback of a module that fails to import; an
# `async def` is run to its end (called, it only returns a coroutine); the bootstrap's
# frames and asyncio's are left out of a task's traceback; sys.argv is just the call (a `main()` that parses
# its command line with argparse saw the bootstrap's own arguments and refused them).
_CALL_BOOTSTRAP = """\
import os, sys
sys.stdout.reconfigure(line_buffering=True)
call, paths = sys.argv[1], sys.argv[2:]
sys.argv[:] = [call]
sys.path[:0] = paths
module, _, attrs = call.partition(":")
top = module.partition(".")[0]
def fail(why):
    sys.exit(f"gitflowd: cannot run call {call!r}: {why}")
def ours(file):
    return any(file.startswith(os.path.join(p, "")) for p in paths)
loaded = getattr(sys.modules.get(top), "__file__", None) or "built in"
if top in sys.modules and not ours(loaded):
    if any(os.path.exists(os.path.join(p, top + ext)) for p in paths for ext in (".py", "")):
        fail(f"{top!r} is a module Python loaded before the task started ({loaded}), "
             f"so the repository's {top!r} is never imported under that name: rename it")
def trace(exc):
    import traceback
    shown = traceback.TracebackException.from_exception(exc)
    shown.stack = traceback.StackSummary.from_list(
        [f for f in shown.stack if f.filename != "<string>" and os.sep + "asyncio" + os.sep not in f.filename])
    sys.stderr.write("".join(shown.format()))
    sys.exit(1)
try:
    __import__(module)
except ModuleNotFoundError as exc:
    if exc.name and (module + ".").startswith(exc.name + "."):
        fail(f"no module named {exc.name!r} (in the repository or Python's path)")
    trace(exc)
except Exception as exc:
    trace(exc)
target = sys.modules[module]
for attr in attrs.split("."):
    if not hasattr(target, attr):
        file = getattr(target, "__file__", None) or ""
        where = f" ({os.path.relpath(file, paths[0]) if ours(file) else file})" if file else ""
        fail(f"{getattr(target, '__name__', module)!r}{where} has no attribute {attr!r}")
    target = getattr(target, attr)
if not callable(target):
    fail(f"{attrs!r} of {module!r} is not a function but {type(target).__name__} {target!r:.60}")
try:
    result = target()
    if hasattr(result, "__await__"):
        import asyncio
        async def finish():
            return await result
        asyncio.run(finish())
except Exception as exc:
    trace(exc)
"""


def call_argv(call: str, sys_path: Iterable[str]) -> list[str]:
    """The command line that runs a `call` task."""
    return [sys.executable, "-c", _CALL_BOOTSTRAP, call, *sys_path]

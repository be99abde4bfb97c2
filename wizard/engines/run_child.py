"""Run a notebook's code cells outside Jupyter: the child of ``python -m wizard run``.

The wizard executes this file by its path with the notebook's own interpreter, so
it must work on Python 3.8 and later with the standard library alone, and it
imports nothing from the ``wizard`` package.

    python -u run_child.py SPEC.json

SPEC.json holds the cells (number and source), a per-run token and the path of a
file for faulthandler's reports. The cells run in order in one ``__main__``
namespace, the way a kernel runs them. Where the parent needs to know what is
happening it reads marker lines from our stdout: the byte 0x1e, the token, and a
JSON object, then a newline. Every other byte on stdout and stderr is the cells'
own output, passed on to the user as it comes.

IPython syntax (``%magic``, ``!cmd``, ``x?``, ``%%cell`` magics) runs through
IPython when this interpreter has it; otherwise those lines are reported and
skipped.
"""

import ast
import builtins
import faulthandler
import importlib.util
import json
import linecache
import os
import re
import signal
import sys
import time
import traceback
import types

RUNNER = os.path.abspath(__file__)
FLAGS = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
CO_COROUTINE = 0x0080
MAX_TEXT = 500  # characters of an exception message or source line in a marker
MAX_FRAMES = 20

# Cell magics whose body is plain Python: without IPython the body still runs.
PYTHON_BODY_MAGICS = ("time", "timeit", "capture", "prun")

_IPY_LINE = re.compile(
    r"""^\s*(
        [%!].*                          # %magic, !shell
      | [\w.\[\]'",\s]+=\s*[%!].*       # x = !cmd, x = %magic
      | \?{1,2}[\w.]+.*                 # ?obj
      | [\w.\[\]()]+\?{1,2}\s*          # obj?  obj??
    )$""",
    re.VERBOSE,
)

# %time / %timeit / %prun with a plain statement (no options): the statement can run.
_TIMED = re.compile(r"^%(time|timeit|prun)\s+([^-\s].*)$")

_state = {"fd": None, "token": "", "shell": None, "ipython": None, "loop": None}


def emit(event, **data):
    """Write one marker line on the saved stdout fd, after the cells' pending output."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    data["ev"] = event
    line = ("\x1e" + _state["token"] + json.dumps(data) + "\n").encode("ascii")
    fd = _state["fd"]
    while line:
        try:
            n = os.write(fd, line)
        except InterruptedError:
            continue
        except OSError:
            return  # the parent went away; nothing left to tell
        line = line[n:]


def clip(text, limit=MAX_TEXT):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cell_of(filename):
    m = re.match(r"^<cell (\d+)>$", filename or "")
    return int(m.group(1)) if m else None


# -- IPython, when this interpreter has it ------------------------------------------


def ipython_shell(module):
    """The InteractiveShell over our namespace, made on first need; None without IPython."""
    if _state["ipython"] is None:
        try:
            from IPython.core.inputtransformer2 import TransformerManager
            from IPython.core.interactiveshell import InteractiveShell
            from traitlets.config import Config
        except ImportError as exc:
            _state["ipython"] = False
            emit("ipython", available=False, detail=clip(f"{type(exc).__name__}: {exc}"))
            return None
        config = Config()
        config.HistoryManager.enabled = False  # no history database written
        config.InteractiveShell.colors = "NoColor"
        shell = runner_shell_class(InteractiveShell).instance(config=config, user_module=module)
        _state["shell"] = (shell, TransformerManager())
        _state["ipython"] = True
        import IPython

        emit("ipython", available=True, detail="IPython " + IPython.__version__)
    return _state["shell"][0] if _state["ipython"] else None


# Non-interactive matplotlib backends: they draw without a window, here as in a kernel.
FILE_BACKENDS = ("agg", "cairo", "pdf", "pgf", "ps", "svg", "template")
INLINE = "module://matplotlib_inline.backend_inline"
NO_GUI = "the run has no window or event loop, as a kernel has none"


def where_in_cell():
    """(cell, line) of the innermost frame of the running cell, or (cell, None)."""
    frame = sys._getframe(1)
    while frame is not None:
        n = cell_of(frame.f_code.co_filename)
        if n is not None:
            return n, frame.f_lineno
        frame = frame.f_back
    return _state.get("cell"), None


def note(text, reason):
    """A line done differently from a kernel, for the report (not a failure)."""
    n, line = where_in_cell()
    emit("skip", cell=n, line=line, text=clip(text), reason=reason)


def runner_shell_class(base):
    """IPython's shell with a kernel's display behaviour and without its GUI event loops.

    A kernel draws matplotlib figures with the inline backend and has no window: here
    ``%matplotlib`` (any variant) uses the inline backend, and ``%gui`` / a GUI
    backend is noted and left out instead of failing the cell.
    """

    class RunnerShell(base):
        def enable_gui(self, gui=None):
            if gui not in (None, "inline"):
                note(f"%gui {gui}", f"{NO_GUI}; the line did nothing")

        def enable_matplotlib(self, gui=None):
            if gui not in (None, "auto", "inline", INLINE):
                from IPython.core import pylabtools

                try:
                    _, backend = pylabtools.find_gui_and_backend(gui)
                except Exception:  # an unknown name: let IPython say so, as a kernel does
                    backend = None
                if backend is not None and str(backend).lower() not in FILE_BACKENDS:
                    note(f"%matplotlib {gui}", f"{NO_GUI}; figures were drawn inline instead")
                    gui = "inline"
            return super().enable_matplotlib(gui)

    return RunnerShell


def show_value(value):
    """A cell's last value, as a kernel shows it: through IPython's formatters if present."""
    shell = _state["shell"][0] if _state["ipython"] else None
    if shell is None:
        print(repr(value))
        return
    data, _ = shell.display_formatter.format(value)
    text = data.get("text/plain")
    if text is not None:
        print(text)


def kernel_like_backend():
    """MPLBACKEND as ipykernel sets it: the inline backend unless the user chose one."""
    if not os.environ.get("MPLBACKEND"):
        os.environ["MPLBACKEND"] = INLINE if importable("matplotlib_inline") else "Agg"


def importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _lazy_get_ipython(module):
    def get_ipython():
        return ipython_shell(module)

    return get_ipython


def _display(*objs, **kwargs):
    """``display`` as notebooks use it: IPython's where installed, else the repr."""
    try:
        from IPython.display import display
    except ImportError:
        for obj in objs:
            print(repr(obj))
        return None
    return display(*objs, **kwargs)


# -- running one cell ------------------------------------------------------------------


def strip_ipython(n, source):
    """Without IPython: blank out IPython-only lines (reported), keeping line numbers."""
    lines = source.splitlines(True)
    first = next((i for i, text in enumerate(lines) if text.strip()), None)
    reason = "IPython is not installed in this Python"
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].strip()[2:].split()
        name = magic[0] if magic else ""
        if name in PYTHON_BODY_MAGICS:
            emit("skip", cell=n, line=first + 1, text=clip(lines[first].strip()), reason=reason)
            lines[first] = "\n"
            return "".join(lines)
        emit(
            "skip",
            cell=n,
            line=first + 1,
            text=clip(lines[first].strip()),
            reason=reason + "; the whole cell is skipped",
        )
        return None
    for i, text in enumerate(lines):
        if not _IPY_LINE.match(text.rstrip("\n")):
            continue
        indent = text[: len(text) - len(text.lstrip())]
        timed = _TIMED.match(text.strip())
        if timed:  # %time STATEMENT: the statement runs, untimed
            emit(
                "skip",
                cell=n,
                line=i + 1,
                text=clip(text.strip()),
                reason=reason + "; the statement ran without %" + timed.group(1),
            )
            lines[i] = indent + timed.group(2) + "\n"
        else:
            emit("skip", cell=n, line=i + 1, text=clip(text.strip()), reason=reason)
            lines[i] = indent + "pass\n"
    return "".join(lines)


def parse(n, source, module):
    """The cell's AST, going through IPython or skipping its syntax where plain Python fails."""
    filename = f"<cell {n}>"
    try:
        return compile(source, filename, "exec", ast.PyCF_ONLY_AST | FLAGS, dont_inherit=True)
    except SyntaxError as first_error:
        shell = ipython_shell(module)
        if shell is not None:
            text = _state["shell"][1].transform_cell(source)
        else:
            text = strip_ipython(n, source)
            if text is None:
                return None
        if text == source:
            raise first_error from None
        return compile(text, filename, "exec", ast.PyCF_ONLY_AST | FLAGS, dont_inherit=True)


def run_code(code, ns):
    if code.co_flags & CO_COROUTINE:  # top-level await, as IPython allows
        import asyncio

        if _state["loop"] is None:
            _state["loop"] = asyncio.new_event_loop()
        return _state["loop"].run_until_complete(eval(code, ns))
    return eval(code, ns)


def run_cell(n, source, module):
    ns = module.__dict__
    filename = f"<cell {n}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    tree = parse(n, source, module)
    if tree is None:
        return
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not source.rstrip().endswith(";"):
        last = ast.Expression(tree.body.pop().value)
    shell = _state["shell"][0] if _state["ipython"] else None
    if shell is not None:
        shell.events.trigger("pre_execute")
    run_code(compile(tree, filename, "exec", FLAGS, dont_inherit=True), ns)
    if last is not None:  # a cell's last expression is shown, as Jupyter does
        value = run_code(compile(last, filename, "eval", FLAGS, dont_inherit=True), ns)
        if value is not None:
            show_value(value)
    if shell is not None:  # the inline backend shows the cell's figures here
        shell.events.trigger("post_execute")


def user_traceback(exc):
    """The traceback without this runner's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == RUNNER:
        tb = tb.tb_next
    return tb


def frames_of(exc):
    frames = []
    for fs in traceback.extract_tb(user_traceback(exc)):
        frames.append(
            {
                "file": fs.filename,
                "line": fs.lineno,
                "function": fs.name,
                "cell": cell_of(fs.filename),
                "text": clip((fs.line or "").strip()),
            }
        )
    if isinstance(exc, SyntaxError) and cell_of(exc.filename) is not None:
        frames.append(
            {
                "file": exc.filename,
                "line": exc.lineno,
                "function": None,
                "cell": cell_of(exc.filename),
                "text": clip((exc.text or "").strip()),
            }
        )
    return frames[-MAX_FRAMES:]


def report(event, n, exc, **extra):
    tb = user_traceback(exc)
    traceback.print_exception(type(exc), exc, tb)
    frames = frames_of(exc)
    # The line of the running cell: its outermost frame in the traceback.
    line = next((f["line"] for f in frames if f["cell"] == n), None)
    emit(
        event,
        cell=n,
        line=line,
        type=type(exc).__name__,
        module=type(exc).__module__,
        message=clip(exc),
        frames=frames,
        **extra,
    )


def main(argv):
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    _state["token"] = spec["token"]
    _state["fd"] = os.dup(1)  # markers go here even if a cell redirects sys.stdout
    fault = open(spec["fault_file"], "w")  # noqa: SIM115 - open until the process ends
    faulthandler.enable(file=fault, all_threads=True)
    if hasattr(faulthandler, "register"):
        # The parent sends SIGUSR1 at a timeout: the Python stack of a stuck cell.
        faulthandler.register(signal.SIGUSR1, file=fault, all_threads=True)

    # The cells' namespace is a fresh __main__ module, as in a kernel (so pickle
    # finds functions the cells define). Keep a reference to this runner's module.
    _state["runner_module"] = sys.modules.get("__main__")
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    module.__dict__["get_ipython"] = _lazy_get_ipython(module)
    module.__dict__["display"] = _display
    sys.modules["__main__"] = module
    sys.argv = [spec.get("notebook") or ""]
    sys.path[0] = os.getcwd()  # not this runner's folder: the notebook's, as a kernel has
    emit("hello", python=sys.version.split()[0], executable=sys.executable, pid=os.getpid())
    kernel_like_backend()
    if importable("IPython"):  # a kernel always has its shell: the same display and magics
        ipython_shell(module)

    for cell in spec["cells"]:
        n = cell["n"]
        emit("start", cell=n)
        _state["cell"] = n
        started = time.monotonic()
        try:
            run_cell(n, cell["source"], module)
        except SystemExit as exc:
            code = exc.code
            emit("exit", cell=n, code=code if isinstance(code, int) or code is None else 1)
            raise
        except KeyboardInterrupt as exc:
            report("interrupted", n, exc)
            return 130
        except BaseException as exc:  # any error in a cell is the user's to see
            report("error", n, exc, seconds=round(time.monotonic() - started, 3))
            return 1
        emit("done", cell=n, seconds=round(time.monotonic() - started, 3))
    emit("finished")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

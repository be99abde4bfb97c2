"""``wizard run`` on a notebook's display and GUI lines, with a real IPython and matplotlib.

A kernel draws figures inline and has no window: a notebook that starts with
``%matplotlib inline`` is healthy, and the run must say so.
"""

import importlib.util
import json
import sys

from conftest import need
from test_cmd_run import notebook, report, wizard


def real_parts():
    for name in ("IPython", "matplotlib", "matplotlib_inline"):
        need(importlib.util.find_spec(name) is not None, f"{name} in the test interpreter")


PLOTTING = (
    "%matplotlib inline",
    "%config InlineBackend.figure_format = 'retina'",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()",
    "plt.plot([3, 2, 1]);",
    "from IPython.display import display, HTML, Markdown\n"
    "display(HTML('<b>bold</b>'), Markdown('*it*'))",
    "class Rich:\n"
    "    def _repr_html_(self):\n"
    "        return '<i>rich</i>'\n"
    "    def __repr__(self):\n"
    "        return 'Rich()'\n"
    "Rich()",
    "import matplotlib\nprint('backend', matplotlib.get_backend())",
    "print('the end')",
)


def test_a_plotting_notebook_runs_through_as_in_a_kernel(tmp_path):
    real_parts()
    nb = notebook(tmp_path / "plots.ipynb", *PLOTTING)
    code, out, err = wizard(tmp_path, nb, "--python", sys.executable, nb=nb)
    assert code == 0, out + err
    assert "NotImplementedError" not in out + err
    assert "How it ended: finished, every cell ran" in out
    # Figures are drawn by the inline backend and shown by their text form.
    assert out.count("<Figure size 640x480 with 1 Axes>") == 2
    assert "<IPython.core.display.HTML object>\n<IPython.core.display.Markdown object>\n" in out
    assert "\nRich()\n" in out
    assert "backend inline\n" in out and "the end\n" in out
    assert "skipped" not in out
    assert "fails outside Jupyter" not in out


def test_gui_lines_are_noted_and_never_blamed_on_the_notebook(tmp_path):
    real_parts()
    nb = notebook(
        tmp_path / "gui.ipynb",
        "%matplotlib qt",
        "%gui tk",
        "import matplotlib.pyplot as plt\nplt.plot([1])\nplt.show()",
        "import matplotlib\nprint('backend', matplotlib.get_backend())",
    )
    code, out, err = wizard(tmp_path, nb, "--python", sys.executable, nb=nb)
    assert code == 0, out + err
    assert "How it ended: finished, every cell ran" in out
    assert "backend inline\n" in out
    assert (
        "[•] line 1 skipped: %matplotlib qt (the run has no window or event loop, as a kernel "
        "has none; figures were drawn inline instead)"
    ) in out
    assert "[•] line 1 skipped: %gui tk (the run has no window or event loop" in out
    assert (
        "[•] Left out because the run has no window, as a kernel has none: 2 line(s); "
        "not a fault of the notebook\n      cell 1, line 1: %matplotlib qt\n"
        "      cell 2, line 1: %gui tk\n"
    ) in out
    assert "IPython is not installed" not in out

    code, out, _ = wizard(tmp_path, nb, "--python", sys.executable, "--json", nb=nb)
    r = report(out)
    assert code == 0 and r["verdict"]["kind"] == "finished"
    assert [(s["cell"], s["line"], s["text"]) for s in r["skipped"]] == [
        (1, 1, "%matplotlib qt"),
        (2, 1, "%gui tk"),
    ]


def test_a_real_error_after_matplotlib_inline_is_still_the_notebooks(tmp_path):
    real_parts()
    nb = notebook(tmp_path / "bad.ipynb", "%matplotlib inline", "x = 1\n1 / 0")
    code, out, _ = wizard(tmp_path, nb, "--python", sys.executable, "--json", nb=nb)
    r = report(out)
    assert code == 1
    assert (r["verdict"]["kind"], r["cell"], r["line"]) == ("exception", 2, 2)
    assert r["exception"]["type"] == "ZeroDivisionError"
    assert json.dumps(r).count("NotImplementedError") == 0

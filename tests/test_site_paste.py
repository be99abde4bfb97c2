"""The paste box: a message pasted as readers paste it lands on its entry.

The variants are messages as they reach a reader: their own notebook paths, kernel
names and numbers, quotes, case, a missing or an extra period, log prefixes (a Jupyter
server's, syslog's, dmesg's), several lines at once. Each must be found by the wizard's
own classifier (``messages.find``, what ``--banner`` reads), by the site's script in
a real Chromium (the same answer), and by typing it into the box on the hub and on
the by-message page, which must then show that entry. The build's table must be the
wizard's table, and each of its entries a heading of the by-message page.
"""

# ruff: noqa: F811  (the browser fixtures come from test_site_browser)

import html
import json
import re
from urllib.parse import urlsplit

import pytest
from conftest import BY_MESSAGE
from test_site_browser import (  # noqa: F401  (fixtures)
    DESKTOP,
    PHONE,
    axe_js,
    axe_violations,
    browser,
    site_url,
)

from wizard.diagnosis import banner, messages

J = "[E 2026-12-02 10:00:00.123 ServerApp]"
I_LOG = "[I 2026-12-02 10:00:00.123 ServerApp]"
SYSLOG = "Dec 02 10:00:00 gpu-node-7 kernel:"
DMESG = "[12345.678]"

# entry -> pastes that must land on it (none copied from the table's patterns)
VARIANTS = {
    "msg-appears-to-have-died": [
        "The kernel for Untitled.ipynb appears to have died. It will restart automatically.",
        "The kernel for projects/2026 Q4/churn model (final).ipynb appears to have died.  "
        "It will restart automatically",
        '"the kernel for Untitled1.ipynb appears to have died. it will restart automatically.."',
        "Kernel Restarting\nThe kernel for work/analysis.ipynb appears to have died. It will "
        "restart automatically.\nOk",
        "The kernel appears to have died. It will restart automatically.",
    ],
    "msg-dead-kernel": ["Dead kernel\nThe kernel has died, and the automatic restart has failed."],
    "msg-error-starting-kernel": ["Error Starting Kernel", "error starting kernel\n\nUnhandled"],
    "msg-restarter-restarting": [
        f"{I_LOG} KernelRestarter: restarting kernel (1/5), keep random ports",
        "[I 10:00:00.123 NotebookApp] KernelRestarter: restarting kernel (3/5), new random ports",
        f"{I_LOG} AsyncIOLoopKernelRestarter: restarting kernel (2/5), keep random ports\n"
        f"{I_LOG} Kernel restarted: 5f1c2a9e-6b1d-4c3e-9f7a-2d8e4b6a1c3f",
    ],
    "msg-restarter-failed": [
        f"{J} KernelRestarter: restart failed",
        "[W 2026-12-02 10:00:05.001 ServerApp] Kernel 5f1c2a9e-6b1d-4c3e-9f7a-2d8e4b6a1c3f "
        "died, removing from map.",
    ],
    "msg-server-unavailable": [
        "Server unavailable or unreachable\nYour server at /user/ada/ is not running. "
        "Would you like to restart it?",
    ],
    "msg-vscode-crashed": [
        "The Kernel crashed while executing code in the current cell or a previous cell. \n"
        "Please review the code in the cell(s) to identify a possible cause of the failure. \n"
        "Click here for more info. \nView Jupyter log for further details.",
    ],
    "msg-vscode-restarted": [
        "The kernel 'Python 3.11.4 (.venv)' died and is being automatically restarted by Jupyter."
    ],
    "msg-vscode-dead": ["Cannot run cells, as the kernel 'torch-env (Python 3.10.12)' is dead."],
    "msg-vscode-canceled-future": [
        "Canceled future for execute_request message before replies were done"
    ],
    "msg-vscode-exit-code": [
        "10:41:07.345 [error] Kernel died with exit code -9",
        "Kernel died with exit code -11.",
    ],
    "msg-spyder-died": ["The kernel died, restarting...", "\n\nThe kernel died, restarting...\n"],
    "msg-cocalc-sigkill": [
        "Kernel last terminated by signal SIGKILL",
        "kernel last terminated by signal SIGKILL.\nMemoryError on line 4",
    ],
    "msg-cocalc-crash": [
        "Kernel last terminated by signal SIGSEGV.",
        "Kernel last terminated by signal SIGBUS",
    ],
    "msg-cocalc-exit": ["Kernel last exited with code 1.", "Kernel last exited with code 127"],
    "msg-colab": [
        "Your session crashed after using all available RAM. If you are interested in access to "
        "high-RAM runtimes, you may want to check out Colab Pro.",
        "Your session crashed for an unknown reason.",
    ],
    "msg-kaggle": [
        "Your notebook tried to allocate more memory than is available. It has restarted."
    ],
    "msg-databricks-unresponsive": ["Fatal error: The Python kernel is unresponsive."],
    "msg-databricks-137": [
        "The Python process exited with exit code 137 (SIGKILL: Killed). This may have been "
        "caused by an OOM error. Check your command's memory usage."
    ],
    "msg-oom-killed-process": [
        f"{SYSLOG} Out of memory: Killed process 48213 (python3) total-vm:9041232kB, "
        "anon-rss:7712404kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:15544kB "
        "oom_score_adj:0",
        f"{DMESG} Memory cgroup out of memory: Killed process 4242 (python) total-vm:123kB",
        "[Wed Dec  2 10:00:00 2026] python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), "
        "order=0, oom_score_adj=0",
    ],
    "msg-slurm-oom": [
        "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=8812345.batch. Some of your "
        "processes may have been killed by the cgroup out-of-memory handler.",
        "8812345      jupyter    OUT_OF_MEMORY  0:125",
    ],
    "msg-k8s-oomkilled": [
        "    Last State:     Terminated\n      Reason:       OOMKilled\n      Exit Code:    137",
        "jupyter-ada   0/1   OOMKilled   3   10m",
        '"OOMKilled": true,',
    ],
    "msg-exit-137": [
        "Exit Code: 137",
        "Exited (137) 4 minutes ago",
        "subprocess.CalledProcessError: Command '['python', 'train.py']' returned non-zero exit "
        "status 137.",
    ],
    "msg-subprocess-signal": [
        "subprocess.CalledProcessError: Command '['python', 'big.py']' died with "
        "<Signals.SIGKILL: 9>.",
    ],
    "msg-macos-application-memory": [
        "Your system has run out of application memory.\nTo avoid problems with your computer, "
        "quit any applications you are not using."
    ],
    "msg-fatal-python-error": [
        "Fatal Python error: Segmentation fault\n\nCurrent thread 0x00007f3a (most recent call "
        'first):\n  File "/opt/conda/lib/python3.11/site-packages/lib.py", line 12 in run',
        "Fatal Python error: Aborted",
    ],
    "msg-bad-alloc": [
        "terminate called after throwing an instance of 'std::bad_alloc'\n  what():  "
        "std::bad_alloc\nAborted (core dumped)"
    ],
    "msg-terminate-called": [
        "terminate called after throwing an instance of 'c10::Error'\n  what():  CUDA driver "
        "version is insufficient\nAborted (core dumped)"
    ],
    "msg-glibc-abort": [
        "double free or corruption (out)\nAborted (core dumped)",
        "free(): invalid pointer\nAborted",
        "malloc(): corrupted top size",
    ],
    "msg-memoryerror": [
        'Traceback (most recent call last):\n  File "<stdin>", line 1, in <module>\nMemoryError',
        "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 7.45 GiB for an array "
        "with shape (1000, 1000000) and data type float64",
    ],
    "msg-omp-error-15": [
        "OMP: Error #15: Initializing libiomp5md.dll, but found libiomp5md.dll already initialized."
    ],
    "msg-cuda": [
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a "
        "total capacity of 15.77 GiB of which 1.19 GiB is free."
    ],
    "msg-illegal-instruction": [
        "Illegal instruction (core dumped)",
        "zsh: illegal hardware instruction  python",
        "The TensorFlow library was compiled to use AVX instructions, but these aren't "
        "available on your machine.\nAborted (core dumped)",
    ],
    "msg-segfault": [
        "Segmentation fault (core dumped)",
        "zsh: segmentation fault  python crash.py",
        "./run.sh: line 3: 40211 Segmentation fault      (core dumped) python train.py",
    ],
    "msg-aborted": ["Aborted (core dumped)", "zsh: abort      python3 app.py", "Aborted"],
    "msg-bus-error": ["Bus error (core dumped)", "zsh: bus error  python load.py"],
    "msg-windows-access-violation": [
        "Process finished with exit code -1073741819 (0xC0000005)",
        "Windows fatal exception: access violation\nexit code 3221225477",
    ],
    "msg-jupyterhub-server-not-running": ["Your server is not running."],
    "msg-killed": [
        "Killed",
        "$ python train.py\nKilled",
        "[1]+  Killed                  python big.py",
        "zsh: killed     python3 load_all.py",
        "bash: line 1: 12345 Killed                  python x.py",
    ],
}
UNKNOWN = [
    "my laptop fan is loud",
    "ModuleNotFoundError: No module named 'pandas'",
    "Kernel last terminated by signal SIGTERM.",
]


def test_every_entry_has_variants():
    assert set(VARIANTS) == set(messages.BY_ID)


@pytest.mark.parametrize("entry,paste", [(e, p) for e, pastes in VARIANTS.items() for p in pastes])
def test_the_wizard_finds_each_variant(entry, paste):
    found = messages.find(paste)
    assert found and found["id"] == entry, (paste, found and found["id"])
    assert banner.parse(paste)["entry"] == entry


@pytest.mark.parametrize("paste", UNKNOWN)
def test_an_unknown_message_finds_nothing(paste):
    assert messages.find(paste) is None


def test_the_banner_takes_the_signal_a_message_implies():
    assert banner.parse("zsh: killed     python3 big.py")["signal"] == "SIGKILL"
    assert banner.parse(f"{DMESG} Out of memory: Killed process 7 (python)")["signal"] == "SIGKILL"
    assert banner.parse("Segmentation fault (core dumped)")["signal"] == "SIGSEGV"
    assert banner.parse("Kernel last terminated by signal SIGTERM.")["signal"] == "SIGTERM"
    assert banner.parse("The kernel for a.ipynb appears to have died.")["kind"] == "died"


EMBEDDED = re.compile(r'<script type="application/json" id="wizard-messages">(.*?)</script>', re.S)


@pytest.mark.parametrize("page", ["index.html", f"{BY_MESSAGE}.html"])
def test_the_site_embeds_the_wizards_table(built_site, page):
    """Drift: the build's table is the wizard's, item for item, on both pages."""
    text = (built_site / page).read_text(encoding="utf-8")
    found = EMBEDDED.findall(text)
    assert len(found) == 1, page
    assert json.loads(found[0]) == messages.site_table()


def test_every_message_is_an_entry_under_its_heading(built_site):
    text = (built_site / f"{BY_MESSAGE}.html").read_text(encoding="utf-8")
    for m in messages.MESSAGES:
        section = re.search(
            rf'<span id="{re.escape(m["id"])}"></span>(?:<span id="[\w-]+"></span>)*'
            r'\s*<h[23]>(.*?)<a class="headerlink"',
            text,
            re.S,
        )
        assert section, m["id"]
        heading = html.unescape(re.sub(r"<[^>]+>", "", section.group(1))).strip()
        assert heading == m["heading"], (m["id"], heading)


# -- In the browser ---------------------------------------------------------------


def open_page(browser, url, viewport=DESKTOP):
    page = browser.context.new_page()
    page.set_viewport_size(viewport)
    page.goto(url, wait_until="load")
    return page


def test_the_script_agrees_with_the_wizard(site_url, browser):
    """Drift, the other half: the site's matcher gives the wizard's answer for every paste."""
    page = open_page(browser, f"{site_url}{BY_MESSAGE}.html")
    pastes = [p for pastes in VARIANTS.values() for p in pastes] + UNKNOWN
    got = page.evaluate(
        "pastes => pastes.map(p => { const m = window.wizardMessages.find(p); "
        "return m ? m.id : null; })",
        pastes,
    )
    page.close()
    wanted = [(messages.find(p) or {}).get("id") for p in pastes]
    assert got == wanted


def paste_into_box(page, text):
    box = page.locator("#wizard-paste-text")
    box.fill(text)
    page.locator("#wizard-paste button[type=submit]").click()


def on_screen(page, entry):
    """Whether the entry's heading is in the window now."""
    return page.evaluate(
        "id => { const h = document.getElementById(id).parentElement.querySelector('h2, h3');"
        " const r = h.getBoundingClientRect();"
        " return r.top > -2 && r.top < window.innerHeight && r.bottom > 0; }",
        entry,
    )


def test_each_variant_lands_on_its_entry_through_the_box(site_url, browser):
    """On the by-message page, every variant: the page jumps to the entry's heading."""
    page = browser.context.new_page()
    page.goto(f"{site_url}{BY_MESSAGE}.html", wait_until="load")
    wrong = []
    for entry, pastes in VARIANTS.items():
        for paste in pastes:
            page.evaluate(
                "() => { history.replaceState(null, '', location.pathname);"
                " window.scrollTo({top: 0, behavior: 'instant'}); }"
            )
            paste_into_box(page, paste)
            try:
                page.wait_for_url(re.compile(rf"{BY_MESSAGE}\.html#{entry}$"), timeout=3000)
            except Exception:
                wrong.append(f"{paste[:50]!r}: not at #{entry} but {page.url}")
                continue
            if not on_screen(page, entry):
                wrong.append(f"{paste[:50]!r}: {entry} is not on screen")
    page.close()
    assert not wrong, "\n".join(wrong)


# From the hub: the commonest messages, pasted as they come (the same script as above).
FROM_THE_HUB = [
    ("msg-appears-to-have-died", 1),
    ("msg-vscode-crashed", 0),
    ("msg-killed", 3),
    ("msg-segfault", 2),
    ("msg-restarter-restarting", 2),
    ("msg-oom-killed-process", 0),
    ("msg-k8s-oomkilled", 0),
    ("msg-spyder-died", 1),
]


def test_the_hubs_box_leads_to_each_entry(site_url, browser):
    """From the hub, the commonest messages: the by-message page, at the entry."""
    page = browser.context.new_page()
    wrong = []
    for entry, n in FROM_THE_HUB:
        pastes = VARIANTS[entry][n:]
        page.goto(site_url + "index.html", wait_until="load")
        paste_into_box(page, pastes[0])
        page.wait_for_url(re.compile(rf"{BY_MESSAGE}\.html#{entry}$"))
        page.wait_for_load_state("load")
        if not on_screen(page, entry):
            wrong.append(f"{pastes[0][:50]!r}: {entry} is not on screen")
    page.close()
    assert not wrong, "\n".join(wrong)


def test_an_unknown_message_shows_the_nearest_entries_and_the_wizard(site_url, browser, axe_js):
    page = open_page(browser, site_url + "index.html")
    paste_into_box(page, "Kernel last terminated by signal SIGTERM.")
    result = page.locator("#wizard-paste-result")
    result.locator("a").first.wait_for()
    hrefs = [a.get_attribute("href") for a in result.locator("a").all()]
    assert any(h.endswith("#msg-cocalc-sigkill") or h.endswith("#msg-cocalc-crash") for h in hrefs)
    assert any(h.endswith("wizard.pyz") for h in hrefs), hrefs
    assert "python3 wizard.pyz" in result.inner_text()
    assert page.url.endswith("index.html")  # it stays: nothing to jump to
    assert not axe_violations(page, axe_js)
    page.close()


def test_without_javascript_the_box_opens_the_list(site_url, browser):
    """No script (blocked here): the form itself opens the by-message page, every entry on it."""
    page = browser.context.new_page()
    page.route(lambda url: urlsplit(url).path.endswith(".js"), lambda route: route.abort())
    page.goto(site_url + "index.html", wait_until="load")
    page.locator("#wizard-paste-text").fill("Killed")
    page.locator("#wizard-paste button[type=submit]").click()
    page.wait_for_url(re.compile(rf"{BY_MESSAGE}\.html\?q=Killed$"))
    missing = [m["id"] for m in messages.MESSAGES if page.locator(f"[id='{m['id']}']").count() != 1]
    page.close()
    assert not missing


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_hubs_first_screen_shows_the_paste_box(site_url, browser, viewport):
    page = open_page(browser, site_url + "index.html", viewport)
    bottom = page.locator("#wizard-paste button[type=submit]").bounding_box()
    text = page.locator("#wizard-paste-text").bounding_box()
    commonest = page.locator("a[href$='#msg-appears-to-have-died']").first.bounding_box()
    page.close()
    assert bottom["y"] + bottom["height"] <= viewport["height"], bottom
    assert text["y"] + text["height"] <= viewport["height"], text
    assert text["width"] >= 200, text
    if viewport is DESKTOP:  # the commonest messages too, on a desktop's first screen
        assert commonest["y"] + commonest["height"] <= viewport["height"], commonest


def test_the_build_warns_when_table_and_page_drift():
    """The build's own check (a warning, so -W fails): both directions, and the heading."""
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    import wizard_site

    table = [{"id": "msg-a", "heading": "A"}, {"id": "msg-b", "heading": "B"}]
    labels = {
        "msg-a": (BY_MESSAGE, "msg-a", "A."),
        "msg-c": (BY_MESSAGE, "msg-c", "C"),
        "other": ("index", "other", "Other"),
    }
    problems = wizard_site.message_problems(table, labels)
    assert len(problems) == 3, problems
    assert "'msg-a': the page's heading 'A.' differs" in problems[0]
    assert "'msg-b' (messages.py) has no entry" in problems[1]
    assert "entry 'msg-c'" in problems[2]
    same = {m["id"]: (BY_MESSAGE, m["id"], m["heading"]) for m in messages.MESSAGES}
    assert wizard_site.message_problems(messages.MESSAGES, same) == []

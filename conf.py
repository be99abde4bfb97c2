"""Sphinx configuration of "Kernel died?", the site about Jupyter kernels that died.

The conf dir is the repository root and the source dir is ``docs/``:

    python -m sphinx -c . -n -W --keep-going -b html docs build/html
"""

import sys
from pathlib import Path

# -- Path setup --------------------------------------------------------------

HERE = Path(__file__).resolve().parent
# The wizard package (its tables and labels are rendered and checked by the build),
# and the site's own extension.
sys.path[:0] = [str(HERE), str(HERE / "docs" / "_ext")]

from wizard import __version__  # noqa: E402
from wizard.diagnosis.docs_map import DEFAULT_DOCS_URL  # noqa: E402

# -- Project information -----------------------------------------------------

project = "Kernel died?"
author = "The kernel-wizard contributors"
copyright = "the kernel-wizard contributors"
release = __version__
version = __version__

# -- General configuration ---------------------------------------------------

extensions = [
    "myst_parser",
    "sphinx_design",
    "sphinx_copybutton",
    "wizard_site",
    "kernel_wizard_options",
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]
language = "en"

# Every reference must resolve; the build runs with -n -W --keep-going.
nitpicky = True

# Quotes stay straight: readers search for messages such as "The kernel 'X' is dead"
# exactly as their interface printed them. Dashes and ellipses are still set.
smartquotes_action = "De"

# -- Options for MyST --------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist"]

# -- Options for HTML output -------------------------------------------------

html_theme = "furo"
html_title = "Kernel died? Troubleshooting Jupyter kernels that died"
html_short_title = "Kernel died?"
html_static_path = ["_static"]  # relative to this file, not to docs/
html_css_files = ["wizard-box.css"]
html_js_files = ["wizard-site.js"]
html_baseurl = DEFAULT_DOCS_URL
html_use_index = True
html_theme_options = {
    "navigation_with_keys": True,
}

# -- Options for sphinx-copybutton ---------------------------------------------

# Copy the commands of a console block, not its "$ " prompts or the output.
copybutton_prompt_text = "$ "
copybutton_only_copy_prompt_lines = True
copybutton_exclude = ".linenos, .gp, .go"

# -- Options for the wizard_site extension -----------------------------------

wizard_site_package = "wizard"

# -- Options for linkcheck ---------------------------------------------------

linkcheck_ignore = [
    # Servers the pages show as examples, and the site itself before it is published.
    r"https?://(localhost|127\.0\.0\.1)(:\d+)?(/.*)?",
    DEFAULT_DOCS_URL + ".*",
]
linkcheck_timeout = 15
linkcheck_retries = 2

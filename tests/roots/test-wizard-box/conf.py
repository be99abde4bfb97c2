"""A tiny site for the wizard_site extension, with a theme other than the real site's.

``boxdata`` (beside this file) stands in for the wizard package. Sphinx runs this file
from its own directory, which is the copy sphinx.testing makes of this root.
"""

import os
import sys

if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())

project = "wizard-box test"
extensions = ["wizard_site"]
html_theme = "alabaster"
nitpicky = True
wizard_site_package = "boxdata"

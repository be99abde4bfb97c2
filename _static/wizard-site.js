/* The site's own behaviour, on top of furo (see docs/_ext/wizard_site.py).

   1. Search results: Sphinx takes each result's snippet from the page's main content,
      which holds the wizard box right after the title. Drop the box first, so that a
      snippet shows the page's own words.
   2. Scrollable code blocks and tables: one that overflows gets tabindex="0", so it can
      be scrolled with the keyboard (axe: scrollable-region-focusable). */
(function () {
  "use strict";

  function patchSearch() {
    if (typeof Search === "undefined" || !Search.htmlToText || Search.wizardBoxDropped) {
      return;
    }
    const htmlToText = Search.htmlToText;
    Search.htmlToText = function (htmlString, anchor) {
      const doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll(".wizard-box").forEach((el) => el.remove());
      return htmlToText(doc.documentElement.outerHTML, anchor);
    };
    Search.wizardBoxDropped = true;
  }

  const SCROLLERS = ".highlight pre, .table-wrapper, .wizard-table";

  function focusableScrollers() {
    document.querySelectorAll(SCROLLERS).forEach((el) => {
      const overflows = el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1;
      if (overflows && !el.hasAttribute("tabindex")) {
        el.setAttribute("tabindex", "0");
        el.classList.add("wizard-scrollable");
      } else if (!overflows && el.classList.contains("wizard-scrollable")) {
        el.removeAttribute("tabindex");
        el.classList.remove("wizard-scrollable");
      }
    });
  }

  patchSearch();
  document.addEventListener("DOMContentLoaded", () => {
    patchSearch();
    focusableScrollers();
  });
  window.addEventListener("load", focusableScrollers);
  window.addEventListener("resize", focusableScrollers);
})();

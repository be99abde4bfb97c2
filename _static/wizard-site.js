/* The site's own behaviour, on top of furo (see docs/_ext/wizard_site.py).

   1. Search results: Sphinx takes each result's snippet from the page's main content,
      which holds the wizard box right after the title. Drop the box first, so that a
      snippet shows the page's own words.
   2. Scrollable code blocks and tables: one that overflows gets tabindex="0", so it can
      be scrolled with the keyboard (axe: scrollable-region-focusable).
   3. The paste box (".. wizard-paste-box::"): the pasted message is matched against the
      table the build embedded (#wizard-messages, from wizard/diagnosis/messages.py, the
      table the wizard's --banner reads), line by line with the same normalisation, and
      the reader goes straight to the entry; an unknown message gets the nearest entries
      and the wizard. Without JavaScript the form opens the by-message page. */
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

  function pasteTable() {
    const el = document.getElementById("wizard-messages");
    if (!el) return null;
    const data = JSON.parse(el.textContent);
    return {
      prefixes: data.prefixes.map((p) => new RegExp(p, "i")),
      quotes: new RegExp(data.quotes, "g"),
      ending: new RegExp(data.ending),
      maxLines: data.maxLines,
      maxLine: data.maxLine,
      messages: data.messages.map((m) => ({
        id: m.id,
        heading: m.heading,
        patterns: m.patterns.map((p) => new RegExp(p, "i")),
      })),
    };
  }

  // The same steps as messages.normalise and messages.lines_of in the wizard.
  function normalise(table, line) {
    line = line.slice(0, table.maxLine).split(/\s+/).filter(Boolean).join(" ");
    let changed = true;
    while (changed && line) {
      changed = false;
      for (const prefix of table.prefixes) {
        const cut = line.match(prefix);
        if (cut && cut[0].length) {
          line = line.slice(cut[0].length);
          changed = true;
        }
      }
      const stripped = line.replace(table.quotes, "").replace(table.ending, "").trim();
      changed = changed || stripped !== line;
      line = stripped;
    }
    return line;
  }

  function linesOf(table, text) {
    const lines = text
      .split(/\r\n|\r|\n/)
      .slice(0, table.maxLines)
      .map((l) => normalise(table, l))
      .filter(Boolean);
    if (lines.length > 1) lines.push(lines.join(" "));
    return lines;
  }

  function findMessage(table, text) {
    const lines = linesOf(table, text);
    for (const message of table.messages) {
      for (const line of lines) {
        if (message.patterns.some((p) => p.test(line))) return message;
      }
    }
    return null;
  }

  const WORD = /[a-z0-9#]{3,}/g;

  function nearest(table, text, count) {
    const words = new Set(text.toLowerCase().match(WORD) || []);
    return table.messages
      .map((m, order) => {
        const own = new Set(m.heading.toLowerCase().match(WORD) || []);
        let score = 0;
        own.forEach((w) => words.has(w) && (score += 1));
        return { m, score, order };
      })
      .filter((s) => s.score > 0)
      .sort((a, b) => b.score - a.score || a.order - b.order)
      .slice(0, count)
      .map((s) => s.m);
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function pasteBoxes() {
    const table = pasteTable();
    if (!table) return;
    window.wizardMessages = { find: (t) => findMessage(table, t), lines: (t) => linesOf(table, t) };
    document.querySelectorAll("form.wizard-paste").forEach((form) => {
      const input = form.querySelector("textarea");
      const result = form.querySelector(".wizard-paste-result");
      const page = form.getAttribute("action");
      const entryUrl = (id) => page + "#" + id;
      const show = (text) => {
        result.replaceChildren();
        const found = findMessage(table, text);
        if (found) {
          result.append("Your message: ", link(entryUrl(found.id), found.heading));
          const target = new URL(entryUrl(found.id), window.location.href);
          if (target.pathname === window.location.pathname) {
            // straight there: no smooth scroll over the whole page
            window.history.pushState(null, "", "#" + found.id);
            const el = document.getElementById(found.id);
            const heading = el && el.parentElement.querySelector("h2, h3");
            if (heading) heading.scrollIntoView({ behavior: "instant", block: "start" });
          } else {
            window.location.assign(target.href);
          }
          return;
        }
        const p = document.createElement("p");
        p.textContent = "No entry has these words yet.";
        result.append(p);
        const close = nearest(table, text, 4);
        if (close.length) {
          const list = document.createElement("ul");
          close.forEach((m) => {
            const li = document.createElement("li");
            li.append(link(entryUrl(m.id), m.heading));
            list.append(li);
          });
          const q = document.createElement("p");
          q.textContent = "The nearest:";
          result.append(q, list);
        }
        const wizard = document.createElement("p");
        const pyz = form.dataset.pyz;
        wizard.append("Or let the wizard look: download ", link(pyz, "wizard.pyz"));
        const code = document.createElement("code");
        code.textContent = "python3 wizard.pyz";
        wizard.append(" and run ", code, " where the kernel ran; ");
        wizard.append(link(page, "all messages"), ".");
        result.append(wizard);
      };
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        if (input.value.trim()) show(input.value);
      });
      input.addEventListener("keydown", (event) => {
        // Enter finds, Shift+Enter adds a line
        if (event.key === "Enter" && !event.shiftKey) {
          event.preventDefault();
          form.requestSubmit();
        }
      });
      const asked = new URLSearchParams(window.location.search).get("q");
      if (asked && !input.value) {
        input.value = asked;
        show(asked);
      }
    });
  }

  patchSearch();
  document.addEventListener("DOMContentLoaded", () => {
    patchSearch();
    focusableScrollers();
    pasteBoxes();
  });
  window.addEventListener("load", focusableScrollers);
  window.addEventListener("resize", focusableScrollers);
})();

"""What the child process of ``wizard run`` says: marker lines and faulthandler's report.

The child's stdout and stderr share one pipe; lines that start with ``\x1e`` and
the run's token carry JSON events (which cell runs, how a cell failed). The rest
is the notebook's own output.
"""

TAIL_BYTES = 4096


class MarkerStream:
    """Splits the child's output into plain output and marker events."""

    def __init__(self, token):
        import codecs

        self.prefix = b"\x1e" + token.encode("ascii")
        self.buf = b""
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.tail = b""

    def feed(self, data, final=False):
        """Yield ("out", text) and ("ev", dict) items for ``data``."""
        import json

        self.buf += data
        while self.buf:
            idx = self.buf.find(self.prefix)
            if idx == -1:
                # Hold back a possible start of a marker split across reads.
                hold = self.buf.rfind(b"\x1e", max(0, len(self.buf) - len(self.prefix)))
                cut = len(self.buf) if final or hold == -1 else hold
                out, self.buf = self.buf[:cut], self.buf[cut:]
                if out:
                    yield "out", self._text(out)
                break
            if idx:
                yield "out", self._text(self.buf[:idx])
                self.buf = self.buf[idx:]
            end = self.buf.find(b"\n")
            if end == -1:
                if final:
                    yield "out", self._text(self.buf)
                    self.buf = b""
                break
            raw, self.buf = self.buf[len(self.prefix) : end], self.buf[end + 1 :]
            try:
                yield "ev", json.loads(raw.decode("ascii"))
            except ValueError:
                yield "out", self._text(raw + b"\n")
        if final:
            rest = self.decoder.decode(b"", final=True)
            if rest:
                yield "out", rest

    def _text(self, data):
        self.tail = (self.tail + data)[-TAIL_BYTES:]
        return self.decoder.decode(data)


# -- faulthandler's report -------------------------------------------------------------


def parse_fault(text):
    """The stack of faulthandler's last report: the current thread's frames, innermost first."""
    import re

    if not text.strip():
        return None
    start = max(text.rfind("Fatal Python error"), 0)
    report = text[start:]
    fatal = report.startswith("Fatal Python error")
    headline = report.splitlines()[0].split(":", 1)[-1].strip() if fatal else None
    blocks, current = [], None
    for line in report.splitlines():
        head = re.match(r"^(Current thread|Thread|Stack)\b.*:$", line.strip())
        if head:
            current = {"current": line.strip().startswith("Current"), "frames": []}
            blocks.append(current)
            continue
        m = re.match(r'^\s+File "(.*)", line (\d+) in (.*)$', line)
        if m and current is not None:
            current["frames"].append(
                {"file": m.group(1), "line": int(m.group(2)), "function": m.group(3).strip()}
            )
    chosen = next((b for b in blocks if b["current"]), blocks[0] if blocks else None)
    modules = None
    m = re.search(r"^Extension modules: (.*?)(?: \(total: \d+\))?$", report, re.M)
    if m:
        modules = [x.strip() for x in m.group(1).split(",") if x.strip()]
    return {
        "fatal": fatal,
        "headline": headline,
        "frames": chosen["frames"] if chosen else [],
        "threads": len(blocks),
        "extension_modules": modules,
    }

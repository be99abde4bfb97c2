"""The kernel-death recorder: samples kernels and their cgroups, notices deaths, stores both.

``Recorder(store).sample()`` takes one sample: the kernels (``wizard.probes.kernels``)
with the memory of each process tree and its memory cgroup's usage, limit and
OOM-kill count. A kernel seen last time and gone now has died; the evidence of how
(see ``wizard.diagnosis.endings``) comes from:

- its exit status, when its parent has not reaped it yet (``/proc/PID/stat`` field 52
  of the zombie), or exactly, from the server itself (``note_exit``, used by
  ``wizard.server_ext``);
- the kernel log (``/dev/kmsg``, read as it comes): an OOM kill or a fault naming
  its pid;
- its cgroup's OOM-kill count, which rose in that interval;
- its Jupyter server (``wizard.probes.servers``): still listing the kernel (it will
  restart it), no longer listing it (shut down on request), or gone.

``Store`` keeps it all in SQLite (WAL, one transaction per sample) and prunes as it
goes: a fixed retention and a size cap.
"""

import time

from wizard.diagnosis import endings as deaths
from wizard.engines import evidence
from wizard.system import cgroup_files, cgroups, kmsg, procfs
from wizard.system.jupyter_procs import looks_like_server

WRITE_EVERY = 60.0  # a kernel's memory is stored at least this often ...
WRITE_CHANGE = 0.02  # ... and whenever it changed by this share (or WRITE_MIN_BYTES)
WRITE_MIN_BYTES = 8 << 20
SERVER_GRACE = 10.0  # seconds a server may take to drop a kernel it shut down
UNLIMITED = 1 << 62


class Cgroups:
    """The memory cgroup of each process, and what one holds: the shared cgroup readers."""

    def __init__(self, root):
        self.root = root
        self.view = cgroups.View(root)

    def of_pid(self, pid):
        """``(version, path)`` of the process's memory cgroup, or None."""
        return self.view.of_pid(pid)

    def read(self, version, path):
        """``{"path", "usage_bytes", "limit_bytes", "limit_path", "oom_kills"}`` or None."""
        kind = "memory" if version == 1 else "cgroup2"
        levels = self.view.levels(kind, path)
        if not levels:
            return None
        cg = cgroup_files.read_memory(self.root, version, levels, [])
        if cg is None:
            return None
        return {
            "path": path,
            "usage_bytes": cg["own_working_set"],
            "limit_bytes": cg["limit_bytes"],
            "limit_path": cg["limit_path"] if cg["limit_bytes"] is not None else None,
            "oom_kills": cg["own_oom_kills"],
        }


def server_parent(root, ppid):
    """``ppid`` when that process is a Jupyter server, else None."""
    if not ppid or ppid <= 1:
        return None
    return ppid if looks_like_server(procfs.read_cmdline(procfs.proc_dir(root), ppid)) else None


# ---------------------------------------------------------------------------
# The recorder


class Recorder:
    """One sample at a time; ``sample()`` returns the deaths it recorded or settled."""

    def __init__(
        self, store, root=None, uid=None, servers=True, name="watch", exact_for=None, only_pids=None
    ):
        from wizard.system.sysroot import SysRoot

        self.store = store
        self.root = root or SysRoot()
        self.uid = uid
        self.use_servers = servers
        self.exact_for = exact_for  # a server pid whose kernels' ends come by note_exit
        self.only_pids = only_pids  # () -> set of pids: sample those kernels only (a server's)
        self.name = name
        self.cgroups = Cgroups(self.root)
        self.klog = kmsg.Follower(self.root)
        self.evidence = evidence.Evidence()
        self.btime = procfs.boot_time(self.root)
        self.clk = procfs.clock_ticks()
        self.host_total = procfs.host_total(self.root)
        self.proc = procfs.proc_dir(self.root)
        self.known = {}  # (pid, started) -> kernel state
        self.cg_now = {}  # cgroup path -> reading of this sample
        self.cg_hist = {}  # cgroup path -> [(time, OOM-kill count)] of the last minutes
        self.cg_written = {}  # cgroup path -> what was last stored
        self.own_cgroup = self.cgroups.of_pid("self")
        self.pending = {}  # (pid, kernel_id) -> {"ev", "until", "server_pid"}
        self.errors = []
        self.samples_taken = 0

    # -- one sample ----------------------------------------------------------

    def sample(self, now=None):
        from wizard.probes import kernels

        result = kernels.probe(self.root, self.uid)
        now = now or time.time()
        self.samples_taken += 1
        self.errors = list(result.get("errors") or [])
        self.evidence.feed(self.klog.read())
        current = {}
        wanted = self.only_pids() if self.only_pids is not None else None
        for k in result.get("kernels") or []:
            if wanted is None or k["pid"] in wanted:
                current[(k["pid"], k.get("started"))] = k

        # New kernels: where they live (cgroup, parent server) is read once.
        for key, k in current.items():
            state = self.known.get(key)
            if state is None:
                state = self._new_state(k, now)
                self.known[key] = state
            state["rss"] = k.get("rss_bytes")
            state["last_seen"] = now
            for field in ("notebook", "kernel_name", "kernel_id"):
                if k.get(field):
                    state[field] = k[field]

        gone = [key for key in self.known if key not in current]
        gone = [key for key in gone if not self._still_there(key)]

        # cgroups of the living and of the dead (their counters tell of OOM kills)
        self.cg_now = {}
        wanted = {s["cgroup_id"] for key, s in self.known.items() if s.get("cgroup_id") is not None}
        for cg in wanted:
            self._read_cgroup(cg, now)

        new_deaths = [self._death_of(key, now) for key in gone]
        for key in gone:
            del self.known[key]
        for ev in new_deaths:
            server_pid = ev.pop("_server_pid", None)
            if (
                self.use_servers
                and server_pid
                and server_pid != self.exact_for
                and ev.get("kernel_id")
            ):
                self.pending[(ev["pid"], ev["kernel_id"])] = {
                    "ev": ev,
                    "until": now + SERVER_GRACE,
                    "server_pid": server_pid,
                    "stored": None,
                }

        kernel_rows = []
        for s in self.known.values():
            cg = self.cg_now.get(s.get("cgroup"))
            if cg:
                s["limit"] = cg["limit_bytes"]
                s["usage"] = cg["usage_bytes"]
            if self._due(s, now):
                kernel_rows.append((s, s["rss"]))
                s["written_rss"], s["written_at"] = s["rss"], now
        cg_rows = []
        for path, cg in self.cg_now.items():
            if self._cg_due(path, cg, now):
                cg_rows.append((path, cg["usage_bytes"], cg["limit_bytes"], cg["oom_kills"]))
        report = []
        for d in self.store.write(now, kernel_rows, cg_rows, new_deaths):
            p = self.pending.get((d["pid"], d["kernel_id"]))
            if p is not None:
                p["stored"] = d
            else:
                report.append(d)
        if self.pending:
            report.extend(self._check_servers(current, now))
        for key in gone:
            self.store.forget(*key)
        self.store.prune(now)
        self.evidence.prune(now)
        return report

    def _read_cgroup(self, cg, now):
        """Read a cgroup ``(version, path)``; keep its OOM-kill count's recent history."""
        reading = self.cgroups.read(cg[0], cg[1])
        if reading is None:
            return None
        self.cg_now[cg[1]] = reading
        hist = self.cg_hist.setdefault(cg[1], [])
        hist.append((now, reading["oom_kills"]))
        while len(hist) > 2 and hist[1][0] < now - 120:
            del hist[0]
        return reading

    def tick(self, now=None):
        """Between samples, or instead of them: keep the own cgroup's OOM count current
        and read the kernel log, so that exits noted later can be judged."""
        now = now or time.time()
        if self.own_cgroup is not None:
            self._read_cgroup(self.own_cgroup, now)
        self.evidence.feed(self.klog.read())

    def _new_state(self, k, now):
        state = {
            "pid": k["pid"],
            "started": k.get("started"),
            "kernel_id": k.get("kernel_id"),
            "notebook": k.get("notebook"),
            "kernel_name": k.get("kernel_name"),
            "first_seen": now,
            "cgroup": None,
            "cgroup_id": None,
            "server_pid": None,
            "written_rss": None,
            "written_at": None,
            "limit": None,
            "usage": None,
        }
        cg = self.cgroups.of_pid(k["pid"])
        if cg is not None:
            state["cgroup_id"] = cg
            state["cgroup"] = cg[1]
        st = procfs.read_stat(self.proc, k["pid"])
        if st is not None:
            state["server_pid"] = server_parent(self.root, st.ppid)
        return state

    def _due(self, s, now):
        if s.get("rss") is None:
            return False
        if s["written_at"] is None or now - s["written_at"] >= WRITE_EVERY:
            return True
        old = s["written_rss"] or 0
        return abs(s["rss"] - old) >= max(WRITE_MIN_BYTES, WRITE_CHANGE * old)

    def _cg_due(self, path, cg, now):
        last = self.cg_written
        prev = last.get(path)
        if (
            prev is None
            or now - prev[0] >= WRITE_EVERY
            or prev[2] != cg["oom_kills"]
            or prev[3] != cg["limit_bytes"]
            or abs((cg["usage_bytes"] or 0) - (prev[1] or 0))
            >= max(WRITE_MIN_BYTES, WRITE_CHANGE * (prev[1] or 0))
        ):
            last[path] = (now, cg["usage_bytes"], cg["oom_kills"], cg["limit_bytes"])
            return True
        return False

    def _start_ticks(self, started):
        if started is None or self.btime is None:
            return None
        return (started - self.btime) * self.clk

    def _still_there(self, key):
        """Whether the process still runs (a scan can miss it: unreadable for a moment)."""
        pid, started = key
        st = procfs.read_stat(self.proc, pid)
        if st is None or st.zombie:
            return False
        ticks = self._start_ticks(started)
        return ticks is None or abs(st.start_ticks - ticks) < 2

    # -- a death ---------------------------------------------------------------

    def _death_of(self, key, now):
        """The evidence of how a kernel that is gone died."""
        pid, started = key
        s = self.known[key]
        ev = {
            "pid": pid,
            "kernel_id": s.get("kernel_id") or "",
            "notebook": s.get("notebook"),
            "kernel_name": s.get("kernel_name"),
            "time": now,
            "started": started,
            "last_seen": s.get("last_seen"),
            "rss_bytes": s.get("rss"),
            "cgroup": s.get("cgroup"),
            "recorded_by": self.name,
        }
        # A zombie still holds its exit status until the parent reaps it.
        st = procfs.read_stat(self.proc, pid)
        ticks = self._start_ticks(started)
        zombie = st is not None and st.state == "Z" and st.exit_code is not None
        if zombie and (ticks is None or abs(st.start_ticks - ticks) < 2):
            ev["returncode"] = deaths.returncode_from_wait_status(st.exit_code)
            ev["status_source"] = "zombie"
        self._add_memory_evidence(ev, s, since=started, before=s.get("last_seen"))
        if s.get("rss") is not None:
            ev["kernel_row"] = self.store._kernel_rows.get(key)
            if ev["kernel_row"] is None and s.get("written_at") is not None:
                ev["kernel_row"] = self.store.kernel_row(s)
        ev["_server_pid"] = s.get("server_pid")
        return ev

    def _add_memory_evidence(self, ev, s, since=None, before=None, fresh=False):
        """Kernel-log kill or fault for the pid; the cgroup's limit and whether its OOM
        count rose after ``before`` (when the kernel was last known alive)."""
        kill, fault = self.evidence.about(ev["pid"], since=since)
        if kill:
            ev["oom"] = "kernel-log"
            if kill.get("time"):
                ev["time"] = kill["time"]
            if kill.get("rss_bytes"):
                ev["rss_bytes"] = max(ev.get("rss_bytes") or 0, kill["rss_bytes"])
        if fault:
            ev["log_signal"] = fault
        if self.klog.ok:
            ev["oom_checked"] = True
        cg = (s or {}).get("cgroup_id") or self.own_cgroup
        reading = None
        if cg is not None:
            reading = self.cg_now.get(cg[1])
            if reading is None or fresh:
                reading = self._read_cgroup(cg, time.time())
        if reading:
            ev["cgroup"] = ev.get("cgroup") or cg[1]
            ev["limit_bytes"] = reading["limit_bytes"]
            ev["usage_bytes"] = reading["usage_bytes"]
            count = reading["oom_kills"]
            if count is not None:
                ev["oom_checked"] = True
                base = None
                for t, n in self.cg_hist.get(cg[1], ()):
                    if before is not None and t > before:
                        break
                    base = n
                if base is not None and count > base and not ev.get("oom"):
                    ev["oom"] = "counter"
        if ev.get("limit_bytes") is None and s:
            ev["limit_bytes"] = s.get("limit")
        if ev.get("limit_bytes") is None:
            ev["limit_bytes"] = self.host_total

    def _check_servers(self, current, now):
        """Ask the servers about kernels that died; returns the deaths now settled.

        A kernel its server still lists is being restarted (it crashed) or is just being
        shut down: the server is asked again for a few seconds before that is settled.
        """
        done = []
        restarted = {k.get("kernel_id") for k in current.values() if k.get("kernel_id")}
        listing = None
        for key in list(self.pending):
            p = self.pending[key]
            ev = p["ev"]
            requested = None
            if ev["kernel_id"] in restarted:
                pass  # the server started it again: it did not stop on purpose
            elif not procfs.exists(self.proc, p["server_pid"]):
                requested = "server-gone"
            else:
                if listing is None:
                    listing = self._server_listing()
                known = listing.get(p["server_pid"])
                if known is not None and ev["kernel_id"] not in known:
                    requested = "unlisted"
                elif now < p["until"]:
                    continue  # still listed: ask again next time
            del self.pending[key]
            if requested:
                done.append(self.store.record_death(dict(ev, requested=requested)))
            elif p["stored"] is not None:
                done.append(p["stored"])
        return done

    def _server_listing(self):
        """``{server pid: set of kernel ids}`` of the servers that answered."""
        from wizard.probes import servers

        try:
            result = servers.probe(self.root, timeout_total=1.0)
        except Exception as exc:  # a probe bug must not stop the recorder: say it, go on
            self.errors.append(f"servers check failed: {type(exc).__name__}")
            return {}
        out = {}
        for s in result.get("servers") or []:
            if s.get("reachable"):
                out[s["pid"]] = {k["id"] for k in s.get("kernels") or []}
        return out

    # -- exact exits, from inside the server -------------------------------------

    def note_exit(self, obs):
        """Record an exit the server saw: ``{"pid", "kernel_id", "returncode", "time",
        "requested", "notebook", "kernel_name"}``. Returns the stored death."""
        pid = obs["pid"]
        state = None
        for (p, _), s in self.known.items():
            if p == pid:
                state = s
        ev = {
            "pid": pid,
            "kernel_id": obs.get("kernel_id") or "",
            "notebook": obs.get("notebook") or (state or {}).get("notebook"),
            "kernel_name": obs.get("kernel_name") or (state or {}).get("kernel_name"),
            "time": obs.get("time") or time.time(),
            "returncode": obs.get("returncode"),
            "status_source": "server",
            "requested": obs.get("requested"),
            "rss_bytes": (state or {}).get("rss"),
            "recorded_by": self.name,
        }
        if state:
            ev["started"] = state.get("started")
            ev["last_seen"] = state.get("last_seen")
            ev["cgroup"] = state.get("cgroup")
        self.evidence.feed(self.klog.read())
        # The server notices an exit within a few seconds (its restarter polls every 3 s):
        # an OOM kill before that counts, one long before does not.
        before = state.get("last_seen") if state else ev["time"] - 6.0
        self._add_memory_evidence(
            ev, state, since=(state or {}).get("started"), before=before, fresh=True
        )
        return self.store.record_death(ev)

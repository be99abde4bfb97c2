"""Fixture trees for the memory probe: fake /proc and /sys/fs/cgroup under a temporary dir."""

from wizard.system.sysroot import SysRoot

GiB = 1 << 30
MiB = 1 << 20
V1_NONE = 9223372036854771712  # what cgroup v1 shows for "no limit"

MEMINFO = """\
MemTotal:        8000000 kB
MemFree:         5000000 kB
MemAvailable:    6000000 kB
Buffers:          100000 kB
Cached:           900000 kB
SwapCached:            0 kB
SwapTotal:       2000000 kB
SwapFree:        1500000 kB
"""
HOST_TOTAL = 8000000 * 1024
HOST_AVAIL = 6000000 * 1024
HOST_SWAP = 2000000 * 1024
HOST_SWAP_USED = 500000 * 1024

VMSTAT = "nr_free_pages 1250000\npgfault 123456\noom_kill 4\n"
HOST_PSI = (
    "some avg10=1.50 avg60=2.25 avg300=0.00 total=100\n"
    "full avg10=0.50 avg60=0.75 avg300=0.00 total=50\n"
)
CGROUP_PSI = (
    "some avg10=11.00 avg60=12.00 avg300=0.00 total=100\n"
    "full avg10=21.00 avg60=22.00 avg300=0.00 total=50\n"
)
STAT = "cpu  1 2 3 4\nbtime 1700000000\nprocesses 10\n"

MOUNT_V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
MOUNT_HYBRID = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)


def write(base, path, content):
    """Write ``content`` (str or bytes) at system path ``path`` under ``base``."""
    p = base / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p


def build(base, files):
    """Write ``{system path: content}`` under ``base``; return a SysRoot on it."""
    for path, content in files.items():
        write(base, path, content)
    return SysRoot(str(base))


def host_files(meminfo=MEMINFO):
    return {
        "/proc/meminfo": meminfo,
        "/proc/vmstat": VMSTAT,
        "/proc/pressure/memory": HOST_PSI,
        "/proc/stat": STAT,
    }


def v2_files(own, cgroups, mountinfo=MOUNT_V2, mount="/sys/fs/cgroup"):
    """Host files plus a v2 tree: ``cgroups`` maps a cgroup path to ``{file: content}``."""
    files = host_files()
    files["/proc/self/cgroup"] = f"0::{own}\n"
    files["/proc/self/mountinfo"] = mountinfo
    files[mount + "/cgroup.controllers"] = "cpu io memory pids\n"
    for cg, content in cgroups.items():
        d = mount + cg.rstrip("/")
        files[d + "/cgroup.procs"] = ""
        for name, text in content.items():
            files[d + "/" + name] = text
    return files


def v1_files(own, cgroups, mountinfo=MOUNT_HYBRID, pids_own="/", pids=None, unified=None):
    """Host files plus a v1 memory tree (and pids tree, and a v2 unified one)."""
    files = host_files()
    files["/proc/self/cgroup"] = (
        f"9:name=systemd:/\n8:pids:{pids_own}\n4:memory:{own}\n1:cpu,cpuacct:/\n0::/\n"
    )
    files["/proc/self/mountinfo"] = mountinfo
    for cg, content in cgroups.items():
        d = "/sys/fs/cgroup/memory" + cg.rstrip("/")
        files[d + "/cgroup.procs"] = ""
        for name, text in content.items():
            files[d + "/" + name] = text
    for cg, content in (pids or {}).items():
        d = "/sys/fs/cgroup/pids" + cg.rstrip("/")
        files[d + "/cgroup.procs"] = ""
        for name, text in content.items():
            files[d + "/" + name] = text
    files["/sys/fs/cgroup/unified/cgroup.controllers"] = ""
    for name, text in (unified or {}).items():
        files["/sys/fs/cgroup/unified/" + name] = text
    return files


def v1_cgroup(limit=V1_NONE, usage=0, peak=0, failcnt=0, oom_kill=0, under_oom=0, **extra):
    """The files of one v1 memory cgroup; ``extra`` adds more (``memsw_limit=...``)."""
    files = {
        "memory.limit_in_bytes": f"{limit}\n",
        "memory.usage_in_bytes": f"{usage}\n",
        "memory.max_usage_in_bytes": f"{peak}\n",
        "memory.failcnt": f"{failcnt}\n",
        "memory.oom_control": f"oom_kill_disable 0\nunder_oom {under_oom}\noom_kill {oom_kill}\n",
        "memory.stat": extra.pop("stat", "cache 0\nrss 0\ntotal_inactive_file 0\n"),
    }
    if "memsw_limit" in extra:
        files["memory.memsw.limit_in_bytes"] = f"{extra.pop('memsw_limit')}\n"
    if "memsw_usage" in extra:
        files["memory.memsw.usage_in_bytes"] = f"{extra.pop('memsw_usage')}\n"
    assert not extra, extra
    return files


def v2_cgroup(max="max", current=0, peak=None, events=None, stat=None, more=None):
    """The files of one v2 cgroup; ``more`` adds ``{file: content}``."""
    files = {"memory.max": f"{max}\n", "memory.current": f"{current}\n"}
    if peak is not None:
        files["memory.peak"] = f"{peak}\n"
    files["memory.events"] = events or "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"
    files["memory.stat"] = stat or "anon 0\nfile 0\ninactive_file 0\n"
    files.update(more or {})
    return files

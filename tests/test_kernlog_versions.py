"""One kernel-log fixture per printk format, as each kernel version writes it.

Each fixture is what the format strings in that version's own source print
(mm/oom_kill.c dump_header/oom_kill_process/dump_oom_summary, mm/memcontrol.c
mem_cgroup_print_oom_info/_context, arch/x86/kernel/traps.c, arch/x86/mm/fault.c),
with the values filled in; the comments quote the format. Each is asserted field by field.
"""

import pytest

from wizard.system import kernlog

# 3.10 (RHEL/CentOS 7): memcontrol.c  printk(KERN_INFO "Task in %s killed", ...)
#   + printk(KERN_CONT " as a result of limit of %s\n", ...);
# oom_kill.c  pr_err("%s: Kill process %d (%s) score %d or sacrifice child\n", ...)
#   pr_err("Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB\n", ...)
V3_10 = [
    (100.0, "python invoked oom-killer: gfp_mask=0xd0, order=0, oom_score_adj=0"),
    (100.0, "python cpuset=/ mems_allowed=0"),
    (
        100.1,
        "Task in /docker/5c1a/notebook killed as a result of limit of /docker/5c1a",
    ),
    (100.1, "memory: usage 1048576kB, limit 1048576kB, failcnt 267"),
    (100.2, "Memory cgroup out of memory: Kill process 4242 (python) score 998 or sacrifice child"),
    (100.2, "Killed process 4242 (python) total-vm:2310000kB, anon-rss:1040000kB, file-rss:2100kB"),
]
# 3.10 with the continuation in a record of its own (KERN_CONT after an interruption).
V3_10_SPLIT = [
    (5.0, "Task in /lxc/box/user killed"),
    (5.0, " as a result of limit of /lxc/box"),
    (5.1, "Memory cgroup out of memory: Kill process 77 (R) score 900 or sacrifice child"),
    (5.1, "Killed process 77 (R) total-vm:1000kB, anon-rss:500kB, file-rss:20kB"),
]
# 4.4 (Ubuntu 16.04): pr_info("Task in "); pr_cont_cgroup_path(task's memcg);
#   pr_cont(" killed as a result of limit of "); pr_cont_cgroup_path(memcg); pr_cont("\n");
# "Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB, shmem-rss:%lukB\n"
V4_4 = [
    (7.0, "ipykernel_launc invoked oom-killer: gfp_mask=0x24000c0, order=0, oom_score_adj=0"),
    (7.1, "Task in /lxc/jupyter/user.slice killed as a result of limit of /lxc/jupyter"),
    (7.1, "memory: usage 524288kB, limit 524288kB, failcnt 31"),
    (7.1, "Memory cgroup stats for /lxc/jupyter: cache:0KB rss:524000KB"),
    (
        7.2,
        "Memory cgroup out of memory: Kill process 900 (ipykernel_launc) score 990 or "
        "sacrifice child",
    ),
    (
        7.2,
        "Killed process 900 (ipykernel_launc) total-vm:900000kB, anon-rss:510000kB, "
        "file-rss:9000kB, shmem-rss:100kB",
    ),
]
# 4.15 (Ubuntu 18.04): as 4.4, then the reaper line
# "oom_reaper: reaped process %d (%s), now anon-rss:%lukB, file-rss:%lukB, shmem-rss:%lukB\n"
V4_15 = [
    (
        9.0,
        "Task in /kubepods/burstable/pod1a2b/0f9e killed as a result of limit of "
        "/kubepods/burstable/pod1a2b",
    ),
    (
        9.1,
        "Memory cgroup out of memory: Kill process 31337 (python3) score 1999 or sacrifice child",
    ),
    (
        9.1,
        "Killed process 31337 (python3) total-vm:4000000kB, anon-rss:2000000kB, "
        "file-rss:30000kB, shmem-rss:0kB",
    ),
    (
        9.2,
        "oom_reaper: reaped process 31337 (python3), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    ),
]
# A host-wide OOM named "limit of host" (vendor kernels), and 4.4's global "Out of memory".
HOST_LIMIT = [
    (3.0, "Task in /user.slice/user-1000.slice killed as a result of limit of host"),
    (3.1, "Out of memory: Kill process 55 (python3) score 900 or sacrifice child"),
    (
        3.1,
        "Killed process 55 (python3) total-vm:8000kB, anon-rss:4000kB, file-rss:0kB, shmem-rss:0kB",
    ),
]
# 5.4, 5.15, 6.1, 6.8+ share dump_oom_summary():
#   pr_info("oom-kill:constraint=%s,nodemask=%*pbl", ...); cpuset_print_current_mems_allowed()
#   (",cpuset=" name ",mems_allowed=%*pbl"); mem_cgroup_print_oom_context(): ",oom_memcg=" path
#   or ",global_oom", ",task_memcg=" path; pr_cont(",task=%s,pid=%d,uid=%d\n", ...)
# and __oom_kill_process(): pr_err("%s: Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB,
#   file-rss:%lukB, shmem-rss:%lukB, UID:%u pgtables:%lukB oom_score_adj:%hd\n", message, ...)
V5_4 = [
    (
        11.0,
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=docker-ab12.scope,"
        "mems_allowed=0,oom_memcg=/system.slice/docker-ab12.scope,"
        "task_memcg=/system.slice/docker-ab12.scope,task=python,pid=812,uid=1000",
    ),
    (
        11.0,
        "Memory cgroup out of memory: Killed process 812 (python) total-vm:1200000kB, "
        "anon-rss:1000000kB, file-rss:10000kB, shmem-rss:0kB, UID:1000 pgtables:2100kB "
        "oom_score_adj:0",
    ),
]
V5_15 = [
    (
        12.0,
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/kubepods.slice/kubepods-pod7.slice,"
        "task_memcg=/kubepods.slice/kubepods-pod7.slice/cri-containerd-99.scope,"
        "task=ipykernel_launc,pid=4001,uid=1000",
    ),
    (
        12.0,
        "Memory cgroup out of memory: Killed process 4001 (ipykernel_launc) total-vm:3000000kB, "
        "anon-rss:2000000kB, file-rss:40000kB, shmem-rss:8kB, UID:1000 pgtables:4500kB "
        "oom_score_adj:985",
    ),
]
V6_1_GLOBAL = [
    (
        13.0,
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,"
        "global_oom,task_memcg=/user.slice/user-1000.slice/session-2.scope,task=python3,"
        "pid=5150,uid=1000",
    ),
    (
        13.0,
        "Out of memory: Killed process 5150 (python3) total-vm:20000000kB, anon-rss:15000000kB, "
        "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:30000kB oom_score_adj:0",
    ),
]
# 6.8+: also mem_cgroup_print_oom_group(): pr_info("Tasks in "); pr_cont_cgroup_path(...);
#   pr_cont(" are going to be killed due to memory.oom.group set\n");
V6_8_GROUP = [
    (
        14.0,
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/user.slice/user-1000.slice/user@1000.service/app.slice,"
        "task_memcg=/user.slice/user-1000.slice/user@1000.service/app.slice/lab.scope,"
        "task=python3,pid=6001,uid=1000",
    ),
    (
        14.0,
        "Memory cgroup out of memory: Killed process 6001 (python3) total-vm:900000kB, "
        "anon-rss:800000kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:1700kB "
        "oom_score_adj:200",
    ),
    (
        14.0,
        "Tasks in /user.slice/user-1000.slice/user@1000.service/app.slice/lab.scope are going "
        "to be killed due to memory.oom.group set",
    ),
    (
        14.1,
        "Memory cgroup out of memory: Killed process 6002 (python3) total-vm:100kB, "
        "anon-rss:50kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:10kB oom_score_adj:200",
    ),
]

KB = 1024
CASES = [
    # fixture, (pid, name, rss kB, total-vm kB, cgroup_oom, memcg, limit_memcg, group_kill)
    (
        V3_10,
        [(4242, "python", 1042100, 2310000, True, "/docker/5c1a/notebook", "/docker/5c1a", False)],
    ),
    (V3_10_SPLIT, [(77, "R", 520, 1000, True, "/lxc/box/user", "/lxc/box", False)]),
    (
        V4_4,
        [
            (
                900,
                "ipykernel_launc",
                519100,
                900000,
                True,
                "/lxc/jupyter/user.slice",
                "/lxc/jupyter",
                False,
            )
        ],
    ),
    (
        V4_15,
        [
            (
                31337,
                "python3",
                2030000,
                4000000,
                True,
                "/kubepods/burstable/pod1a2b/0f9e",
                "/kubepods/burstable/pod1a2b",
                False,
            )
        ],
    ),
    (HOST_LIMIT, [(55, "python3", 4000, 8000, False, "/user.slice/user-1000.slice", None, False)]),
    (
        V5_4,
        [
            (
                812,
                "python",
                1010000,
                1200000,
                True,
                "/system.slice/docker-ab12.scope",
                "/system.slice/docker-ab12.scope",
                False,
            )
        ],
    ),
    (
        V5_15,
        [
            (
                4001,
                "ipykernel_launc",
                2040008,
                3000000,
                True,
                "/kubepods.slice/kubepods-pod7.slice/cri-containerd-99.scope",
                "/kubepods.slice/kubepods-pod7.slice",
                False,
            )
        ],
    ),
    (
        V6_1_GLOBAL,
        [
            (
                5150,
                "python3",
                15000000,
                20000000,
                False,
                "/user.slice/user-1000.slice/session-2.scope",
                None,
                False,
            )
        ],
    ),
    (
        V6_8_GROUP,
        [
            (
                6001,
                "python3",
                800000,
                900000,
                True,
                "/user.slice/user-1000.slice/user@1000.service/app.slice/lab.scope",
                "/user.slice/user-1000.slice/user@1000.service/app.slice",
                True,
            ),
            (
                6002,
                "python3",
                50,
                100,
                True,
                "/user.slice/user-1000.slice/user@1000.service/app.slice/lab.scope",
                None,
                True,
            ),
        ],
    ),
]
NAMES = [
    "3.10",
    "3.10-split",
    "4.4",
    "4.15",
    "limit-of-host",
    "5.4",
    "5.15",
    "6.1-global",
    "6.8-group",
]


@pytest.mark.parametrize(("entries", "want"), CASES, ids=NAMES)
def test_each_version_field_by_field(entries, want):
    found = kernlog.kills(entries, btime=1_700_000_000)
    assert len(found) == len(want)
    for kill, (pid, name, rss, vm, cgroup_oom, memcg, limit, group) in zip(found, want):
        assert kill["pid"] == pid
        assert kill["name"] == name
        assert kill["rss_bytes"] == rss * KB
        assert kill["total_vm_bytes"] == vm * KB
        assert kill["cgroup_oom"] is cgroup_oom
        assert kill["memcg"] == memcg
        assert kill["limit_memcg"] == limit
        assert kill["group_kill"] is group
        assert kill["time"] == pytest.approx(1_700_000_000 + entries[-1][0], abs=1)


def test_a_task_in_line_does_not_outlive_its_kill():
    entries = [*V4_4, (20.0, "Killed process 1000 (bare) total-vm:1kB")]
    last = kernlog.kills(entries)[-1]
    assert (last["pid"], last["memcg"], last["limit_memcg"], last["cgroup_oom"]) == (
        1000,
        None,
        None,
        False,
    )


# Fault lines. traps.c 3.10-4.x do_general_protection():
#   pr_info("%s[%d] general protection ip:%lx sp:%lx error:%lx", ...); print_vma_addr(" in ", ip)
# 5.x+ show_signal(): pr_info("%s[%d] %s%s ip:%lx sp:%lx error:%lx", comm, pid, type, desc, ...)
#   with ("", "general protection fault") or ("trap ", "invalid opcode"/"divide error"/"int3")
# fault.c show_signal_msg(): "%s%s[%d]: segfault at %lx ip %px sp %px error %lx" + " in "
#   lib[...] (6.1+: + " likely on CPU %d (core %d, socket %d)")
FAULTS = [
    (
        "traps: python[2048] general protection ip:7f3a1c2b4d5e sp:7ffd0e1f2a30 error:0 in "
        "libcrypto.so.1.0.2k[7f3a1c000000+28e000]",
        (2048, "SIGSEGV"),
    ),
    (
        "traps: python3[3001] general protection fault ip:7f00aa11bb22 sp:7ffc11223344 error:0 "
        "in libtorch_cpu.so[7f0000000000+1000000]",
        (3001, "SIGSEGV"),
    ),
    (
        "traps: python3[3002] trap invalid opcode ip:7f1 sp:7ff error:0 in libm.so.6[7f0+1000]",
        (3002, "SIGILL"),
    ),
    ("traps: R[3003] trap divide error ip:55a sp:7ffe error:0 in R[55a+2000]", (3003, "SIGFPE")),
    (
        "python3[3004]: segfault at 0 ip 00007f5e sp 00007ffd error 4 in libc.so.6[7f5e+195000] "
        "likely on CPU 1 (core 1, socket 0)",
        (3004, "SIGSEGV"),
    ),
    (
        "python[3005]: segfault at 8 ip 00007f5e sp 00007ffd error 6 in _mod.so[7f5e+1000]",
        (3005, "SIGSEGV"),
    ),
]


FAULT_IDS = ["gp-3.10", "gp-5.x", "ud", "de", "segv-6.1", "segv-3.10"]


@pytest.mark.parametrize(("line", "want"), FAULTS, ids=FAULT_IDS)
def test_fault_lines(line, want):
    assert kernlog.parse_fault(line) == want


def test_the_report_names_the_cgroup_whose_limit_was_hit():
    from wizard.diagnosis.common import kill_line

    pod, own = kernlog.kills(V4_15 + V5_4)
    assert kill_line(pod).endswith(
        "in cgroup /kubepods/burstable/pod1a2b/0f9e (the limit of cgroup "
        "/kubepods/burstable/pod1a2b was hit)"
    )
    assert kill_line(own).endswith(
        "in cgroup /system.slice/docker-ab12.scope (its own limit was hit)"
    )
    (host,) = kernlog.kills(V6_1_GLOBAL)
    assert "limit" not in kill_line(host)

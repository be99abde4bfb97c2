"""mountinfo lines whose mount source is empty: two spaces after the filesystem type."""

from wizard.system import cgroups

MOUNTINFO = (
    "25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    # an empty source: "- cgroup2  rw,..." (two spaces); the super options are still field 3
    "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2  "
    "rw,nsdelegate,memory_recursiveprot\n"
    "31 25 0:27 /kubepods/pod1 /sys/fs/cgroup/memory rw,nosuid shared:10 - cgroup  "
    "rw,memory\n"
    "32 25 0:28 / /sys/fs/cgroup/pids rw,nosuid shared:11 - cgroup cgroup rw,pids\n"
    "33 25 0:29 / /tmp rw shared:12 - tmpfs  rw\n"
)


def test_empty_sources_keep_the_fields_in_place():
    found = cgroups.parse_mounts(MOUNTINFO)
    assert found["cgroup2"] == [("/", "/sys/fs/cgroup")]
    assert found["memory"] == [("/kubepods/pod1", "/sys/fs/cgroup/memory")]
    assert found["pids"] == [("/", "/sys/fs/cgroup/pids")]
    # the empty source is not taken for the options
    assert "" not in found and "cgroup" not in found

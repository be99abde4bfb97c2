"""Every threshold and time window the verdicts use, in one place.

The rules, ``wizard run``'s verdict, the idle-kernel test shared by the rule and
``halt --idle``, and the site's tables all read them from here.
"""

NEAR_LIMIT = 0.90  # share of the memory limit in use (or a run's peak) that is a problem
HIGH_USE = 0.75  # ... and a warning
PIDS_NEAR_LIMIT = 0.80
IDLE_SECONDS = 15 * 60  # a kernel idle this long with memory is worth halting
IDLE_MIN_BYTES = 100 << 20  # ... when it holds at least this much
MANY_KERNELS = 5
PRESSURE_SOME_AVG10 = 20.0  # % of time tasks waited for memory in the last 10 s
RECENT_OOM_SECONDS = 24 * 3600  # kernel-log kills newer than this are "recent"
RECENT_DEATH_SECONDS = 24 * 3600  # deaths the recorder saw in this window lead the verdict
DEATH_WINDOW = 3600.0  # memory samples kept with each death come from the hour before it

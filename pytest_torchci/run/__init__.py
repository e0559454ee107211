"""Running commands for real, and keeping what they leave behind in hand.

Owns process groups and their output (:mod:`.processes`, the log :mod:`.suitelog`, the
program found on PATH :mod:`.pathsearch`), a unit's commands run with its
log and deadline (:mod:`.execute`, failing with :mod:`.failure`'s ``SuiteError``), the
setup calls once per host and the teardown calls (:mod:`.setups`), finding and stopping
a suite's whole process tree (:mod:`.reaper`) and the journal of the run's process
groups (:mod:`.journal`), cancellation by signal (:mod:`.cancel`), deadlines
(:mod:`.deadlines`), the private state folder (:mod:`.statedir`), the suites' own JUnit
XML (:mod:`.reports`, :mod:`.junit`, per item :mod:`.childreports`) and the timeline
(:mod:`.timeline`); the C library for the calls ``os`` lacks (:mod:`.libc`). May import
:mod:`..plan` and :mod:`..data`.
"""

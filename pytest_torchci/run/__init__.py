"""Running commands for real, and keeping what they leave behind in hand.

Owns process groups and their output (:mod:`.processes`), finding and stopping a suite's
whole process tree (:mod:`.reaper`), cancellation by signal (:mod:`.cancel`), deadlines
(:mod:`.deadlines`), the private state folder (:mod:`.statedir`), the suites' own JUnit
XML (:mod:`.reports`, :mod:`.junit`) and the timeline (:mod:`.timeline`). May import
:mod:`..plan` and :mod:`..data`.
"""

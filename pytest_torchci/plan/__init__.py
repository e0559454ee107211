"""Planning: what test.sh would run for a job, command by command.

Owns the engine that walks the suite data's steps as bash would (:mod:`.engine`), the
native value functions that stand for ``$(...)`` (:mod:`.natives`), the planner that
routes a job and records its plan (:mod:`.planner`), jobs read from files
(:mod:`.jobs`) and the configs the data knows (:mod:`.configs`). May import
:mod:`..data` only; it starts no process itself (the engine calls an executor it is
given).
"""

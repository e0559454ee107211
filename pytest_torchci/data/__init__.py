"""The suite data: what test.sh's tests are, read from ``suites/*.toml``.

Owns the data model (jobs, commands, plans: :mod:`.model`), the loader and its schema
(:mod:`.loader`), the conditions on a job's traits (:mod:`.conditions`) and bash's glob
and word rules (:mod:`.bash`). Imports nothing else of the package: every other layer
reads the data through it.
"""

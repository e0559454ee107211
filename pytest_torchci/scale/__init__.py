"""Scaling a config out: shards, their balance by time, and the CI matrix.

Owns the expansion of all shards into one plan and their balancing (:mod:`.shards`),
expected durations from JUnit files and stores (:mod:`.durations`) and the
GitHub Actions test matrix (:mod:`.matrix`). May import :mod:`..devices`, :mod:`..run`,
:mod:`..plan` and :mod:`..data`.
"""

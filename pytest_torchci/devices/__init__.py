"""The host's devices and who holds them.

Owns device discovery (:mod:`.discovery`: NVML, ``nvidia-smi``, ``rocm-smi``, XPU, or a
declared list), what a job's suites need of them (:mod:`.needs`) and leases
(:mod:`.leases`: one lock file per device slot, across processes and runs). May import
:mod:`..run`, :mod:`..plan` and :mod:`..data`.
"""

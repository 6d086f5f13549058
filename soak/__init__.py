"""The reliability soak: a seeded random workload on both sides, faults and kills, then checks.

``python -m soak.run`` (or ``make soak``) starts the Dataverse emulator, ``crmsync serve`` and
``crmsync sync run`` as real processes, drives salespeople through the emulator's Web API and
marketers through the Marketo REST API and the CLI, injects faults through the emulator's admin
API, kills and restarts the sync, and at quiescence compares every tracked field of every record
on both sides with an independent model of the documented rules (:mod:`soak.model`).

Modules: :mod:`soak.processes` (the servers and sync processes), :mod:`soak.sides` (the two
sides' public interfaces), :mod:`soak.model` (what the rules allow), :mod:`soak.workload` (the
random operations), :mod:`soak.check` (the comparison), :mod:`soak.run` (the command line).
"""

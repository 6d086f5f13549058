"""Smart campaigns: definitions, durable triggers, the runner and its flow steps.

Modules: :mod:`.definitions` (the JSON shape, checked), :mod:`.service` (save, list, activate,
run, results), :mod:`.triggers` (events written with the change that fires them),
:mod:`.runner` (claims events and runs flows), :mod:`.steps` (one function per flow step) and
:mod:`.realtime` (pushes a Sync Person to Microsoft create to Dynamics right away).
"""

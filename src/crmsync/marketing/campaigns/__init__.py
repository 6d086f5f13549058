"""Smart campaigns: definitions, durable triggers, the runner and its flow steps.

Modules: :mod:`.definitions` (the JSON shape, checked), :mod:`.service` (save, list, activate,
run, results), :mod:`.triggers` (events written with the change that fires them),
:mod:`.runner` (claims events and runs flows) with :mod:`.events`, :mod:`.qualification`
and :mod:`.choices` (per-step choices), :mod:`.schedules` (Schedule Campaign), :mod:`.writes`
(activity rows and outbox entries) and :mod:`.steps` (one function per marketing flow step).
The Microsoft steps and the real-time push need the Dynamics sync, a layer above:
:mod:`crmsync.sync.campaign_steps` and :mod:`crmsync.sync.campaign_push`.
"""

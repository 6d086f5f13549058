"""A local Dataverse Web API emulator: the same wire format as Dynamics 365, on one machine.

Entry point: ``crmsync.emulator.app.create_emulator_app(config, db_path, runtime=...)``.

``config`` and ``runtime`` hold its configuration and mutable state; ``auth`` (identity
provider, bearer tokens), ``protection`` (service protection limits) and ``faults`` (fault
injection, admin API, and ``control_routes`` / ``wrap_with_control``, which assemble the control
plane) wrap the data plane (``app``, ``storage`` and the OData modules). ``seed`` fills an org
with realistic data; ``tls`` makes the certificates for HTTPS. See ``docs/emulator.md``.
"""

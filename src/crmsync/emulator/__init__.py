"""A local Dataverse Web API emulator: the same wire format as Dynamics 365, on one machine.

``config`` and ``runtime`` hold its configuration and mutable state; ``auth``, ``protection``
and ``faults`` form the control plane (tokens, throttling, fault injection) wrapped around the
data plane (``app``, ``storage`` and the OData modules).
"""

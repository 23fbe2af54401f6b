"""Training health: failure detectors over windows of training scalars, advice, and ``health.json``.

The Lightning side (feeding the detectors, warning, writing the record) is
:class:`genlab.run.callbacks.health.HealthMonitor`.
"""

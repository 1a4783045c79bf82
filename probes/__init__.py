"""Signal sources (one module per probe kind), the detectors, the scheduler and the worker."""

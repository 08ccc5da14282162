"""The guard: rings, pipeline, calibration, config."""

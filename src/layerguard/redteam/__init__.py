"""Red team: attacks, judges, runs and reports."""

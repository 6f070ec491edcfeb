"""Runners: one per kind of work (a script once, one action, many items). Each returns an Outcome."""

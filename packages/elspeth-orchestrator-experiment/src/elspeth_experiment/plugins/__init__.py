"""The experiment orchestrator's builtin sub-plugins."""

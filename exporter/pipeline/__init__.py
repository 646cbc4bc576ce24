"""From settings to served data: credentials, the snapshot cache of each target, the target set."""

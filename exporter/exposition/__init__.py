"""From records to exposition: the metric table, snapshots, the cached renderer, the collector."""

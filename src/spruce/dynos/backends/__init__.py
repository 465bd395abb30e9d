"""Dyno backends: where dynos run (local processes; Kubernetes workloads)."""

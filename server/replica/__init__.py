"""Scheduler replicas on one PostgreSQL: a lease with a term decides the one acting leader."""

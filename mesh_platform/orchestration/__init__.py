"""Orchestration: landing-file sensors, cross-domain automation, freshness and alerts."""

"""Alerts: rules evaluated after each poll, grouped messages sent through an outbox."""

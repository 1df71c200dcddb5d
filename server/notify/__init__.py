"""Notifications: emails and webhooks for the maintenance lifecycle, through an outbox in the database."""

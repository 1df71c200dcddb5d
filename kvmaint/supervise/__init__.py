"""`kvmaint apps:exec`: run a command with an app's config vars and restart it when they change."""

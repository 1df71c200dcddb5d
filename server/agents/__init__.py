"""The scheduler's side of the agent link: sessions, commands and their results."""

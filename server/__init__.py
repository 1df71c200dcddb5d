"""The kvmaint scheduler: maintenance API, durable state and the driver of agents."""

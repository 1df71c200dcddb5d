"""The gRPC edge: protos are converted to domain values here and nowhere else."""

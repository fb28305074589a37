"""voxflow.check."""

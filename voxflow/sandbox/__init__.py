"""voxflow.sandbox."""

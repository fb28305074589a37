"""voxflow.runtime."""

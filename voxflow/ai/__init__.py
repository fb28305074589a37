"""voxflow.ai."""

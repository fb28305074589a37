"""voxflow.media."""

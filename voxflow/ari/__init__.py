"""voxflow.ari."""

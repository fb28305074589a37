"""voxflow.ir."""

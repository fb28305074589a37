"""voxflow.syntax."""

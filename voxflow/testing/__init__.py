"""voxflow.testing."""

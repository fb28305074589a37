"""The voxflow command line (click)."""

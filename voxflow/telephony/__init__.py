"""voxflow.telephony."""

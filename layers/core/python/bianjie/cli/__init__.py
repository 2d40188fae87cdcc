"""The operator CLI ``bianjie``."""

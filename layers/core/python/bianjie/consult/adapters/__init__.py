"""consult's adapters to outside systems (I/O lives here only)."""

"""Pure domain logic: no I/O, no clock reads; every time comes in as an argument."""

"""Pure rules: no I/O, no clock, no environment; time and ids are arguments."""

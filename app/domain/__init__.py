"""Pure domain logic: envelopes and events, normalizing, identity resolution, leads, call
contexts, call outcomes, the calling window and the dialer's state machine.

No I/O: values in, values out, so it is tested without a broker. Imports app.core and the
table declarations (realgeeks_sync.tables) only.
"""

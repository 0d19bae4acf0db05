"""Sandbox accounts: Organizations attach/detach of the deny SCP (see `killswitch.sandbox.org`)."""

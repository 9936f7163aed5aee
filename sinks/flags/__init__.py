"""Flags: the flip policy (people and alerts pressing the button) and the flipper."""

"""Feature flags evaluated in the app: toggles, flags and ticket flags (see ``docs/flags.md``)."""

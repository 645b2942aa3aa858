"""User context: profiles in the application's store (profiles.py), follow-ups read against the
thread's topic (followups.py), what a turn was routed to (turns.py), and the `profile` command
(commands.py). Kept import-light: the CLI registers its command before anything is built."""

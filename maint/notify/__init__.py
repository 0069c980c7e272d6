"""Notifications about runs: dead man's switch pings (``pings``), notifications of run outcomes through
Apprise (``notifications``), and the watch that sends both as a run goes (``watch``). A failing notifier
only warns."""

"""Identity: workspaces (one brand each), operators and roles, API tokens, console sessions, audit log."""

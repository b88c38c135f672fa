"""People and access: users, roles, passwords, tokens, scope rules and the audit trail."""

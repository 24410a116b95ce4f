"""Staff pages besides the case workspace: dashboard, clients, opening a case, playbooks,
settings. Each module holds thin views: parse the form, call one service, render."""

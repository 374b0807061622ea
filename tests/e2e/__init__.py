"""End-to-end tests: the real app in a real terminal (tmux) (a package, as the other folders)."""

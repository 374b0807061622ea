"""The Textual app: a thin UI over the headless core."""

"""The state store: what happened to every file, model, inference run and export."""

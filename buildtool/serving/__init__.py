"""The model-serving smoke: a scoring image FROM each CPU leaf."""

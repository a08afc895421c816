"""Reading the inputs: images.yaml (YAML with line numbers, value grammars, the typed Config), the site overlay, tag templates, the JSON Schema."""

"""Planning, pure: the axes product and rules, image names and groups, the layer DAG, what to check per image, CI planning, apt names per layer."""

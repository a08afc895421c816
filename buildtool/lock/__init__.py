"""images.lock: its format, resolving apt pins (in a container of the base) and pip sets (uv), checking pins against today's archive."""

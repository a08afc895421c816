"""`buildtool lock`'s resolvers: apt in a throwaway container of each base, pip sets with uv; they write images.lock (buildtool.lock)."""

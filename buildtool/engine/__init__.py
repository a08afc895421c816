"""The Docker Engine side: the engine client, base images, the parallel DAG build, progress, pruning, the registry-cached remote runner."""

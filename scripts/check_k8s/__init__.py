"""scripts/check-k8s: deploy/k8s/ checked without a cluster (see scripts/check-k8s)."""

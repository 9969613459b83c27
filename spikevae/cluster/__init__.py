"""Per-electrode clustering: initial clusterer, refinement, overlap resolution."""
from .base import BaseClusterer, clusterer_registry, get_clusterer
from .config import ClusterConfig
from .run import cluster_electrode, cluster_spikes

__all__ = ["BaseClusterer", "ClusterConfig", "cluster_electrode", "cluster_spikes", "clusterer_registry",
           "get_clusterer"]

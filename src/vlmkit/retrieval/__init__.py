"""Image collections indexed for nearest-neighbour search (FAISS), shared by ComCa and C2B."""

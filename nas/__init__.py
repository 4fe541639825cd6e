"""The search engine: configuration, search spaces, cost model, proxy evaluation and the CLIs."""

"""LLM-callable tools and the clients they drive (catalogue, purchase requests, ERP, supplier websites)."""

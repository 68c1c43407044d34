"""Graph nodes and routers, one module per stage (imports: tools and core only)."""

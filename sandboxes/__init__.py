"""Reference third-party systems for demos and tests: the supplier shop, the Tryton ERP, WhatsApp provider stand-ins.

Not production code: the agent never imports this package; the CLI imports it lazily (``procure sandbox
supplier``, ``procure erp setup|serve``) because its dependencies (trytond, proteus) are optional and heavy.
"""

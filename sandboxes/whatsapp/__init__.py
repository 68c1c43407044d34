"""WhatsApp provider stand-ins for the demo, tests and benchmarks: Meta's Graph API and signed Meta webhook payloads.

``meta_graph_api.GraphAPIStandIn`` is a real HTTP server following Meta's documented contract; ``meta_payloads``
builds webhook bodies signed the way Meta signs them. Stand-ins for Twilio and Evolution API belong here too.
"""

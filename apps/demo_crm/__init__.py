"""The demo CRM/ERP: a small HTTP service with the demo shop's customers, orders, shipments,
tickets, stock and refunds (PROTOCOL.md §6). It runs as its own process
(`python -m apps.demo_crm`), knows nothing of Django, and is reached by Kefu's HTTP connector
exactly as a real system would be."""

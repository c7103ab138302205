"""Analytics: tracked events (ingest, event store); KPI rollups, funnels, retention and reports later."""

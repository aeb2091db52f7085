"""The OTLP-fed collector: receivers -> normalize -> durable spool -> ClickHouse writer."""

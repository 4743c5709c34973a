"""Direct cover uploads: the presigned POST (service), S3's event (events), the ingest (ingest) and their tasks."""

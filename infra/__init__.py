"""The product's infrastructure: one model (model.py) and its two executors, the idempotent
API calls (local.py) and the CloudFormation merge template (cloudformation.py); the artefact
they deploy, built for the Lambda runtime (lambda_build.py, with pythons.py) and checked
(zipcheck.py); and a stage's settings (stage.py).

Used by the deploy and local tooling only, and it never imports them (devtools/ may import
infra/, not the reverse: tests/test_import_graph.py); never shipped in the Lambda zip (zipcheck.py).
"""

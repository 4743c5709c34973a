"""The product's infrastructure: one model (model.py) and its two executors, the idempotent
API calls (local.py) and the CloudFormation merge template (cloudformation.py).

Used by the deploy and local tooling only; never shipped in the Lambda zip (devtools/zipcheck.py).
"""

"""The embedded moto-based emulator (`server.py`) and the fixes it applies to moto: AWS behaviour
moto lacks (S3 auth and POST policies, SES v2 bulk mail) and costs that grow with the data
(SQS, DynamoDB transactions and queries). Each fix is described for upstream in docs/UPSTREAM.md."""

"""What every domain stands on: configuration, AWS clients, SQS primitives, errors, logs and
metrics, signing, cursors, validation, input schemas, deadlines, DynamoDB transactions,
idempotency, author keys and the one-message mailer.
"""

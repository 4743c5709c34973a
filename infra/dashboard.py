"""The CloudWatch dashboard of a stage: queues, DLQs, task outcomes and the functions.

One body for both paths: the template's AWS::CloudWatch::Dashboard (`${AWS::Region}` left to
CloudFormation) and `infra.local.apply_monitoring` (region filled in).
"""

from __future__ import annotations

from typing import Any

from infra.functions import FUNCTIONS, function_name


def dashboard_body(settings: Any) -> dict[str, Any]:
    """The CloudWatch dashboard: queues, DLQs, task outcomes and the functions."""
    region = "${AWS::Region}"
    queues = list(settings.queues.values())

    def widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Sum") -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {"title": title, "region": region, "stat": stat, "period": 60, "metrics": metrics},
        }

    def sqs(metric: str, names: list[str]) -> list[list[Any]]:
        return [["AWS/SQS", metric, "QueueName", name] for name in names]

    def app_metric(metric: str, tasks: list[str]) -> list[list[Any]]:
        dims = ["service", settings.app_name, "stage", settings.stage]
        return [["Bookshelf", metric, *dims, "task", task] for task in tasks]

    def lam(metric: str) -> list[list[Any]]:
        return [["AWS/Lambda", metric, "FunctionName", function_name(settings, name)] for name in FUNCTIONS]

    tasks = ["covers.resize", "books.notify_subscribers", "mail.fanout_page", "mail.resend"]
    work, dead = [q.name for q in queues], [q.dlq_name for q in queues]
    widgets = [
        widget("Queue depth (visible)", sqs("ApproximateNumberOfMessagesVisible", work), 0, 0, "Maximum"),
        widget("Dead-letter queue depth", sqs("ApproximateNumberOfMessagesVisible", dead), 12, 0, "Maximum"),
        widget("Age of oldest message (s)", sqs("ApproximateAgeOfOldestMessage", work), 0, 6, "Maximum"),
        widget("In flight", sqs("ApproximateNumberOfMessagesNotVisible", work), 12, 6, "Maximum"),
        widget("Tasks succeeded", app_metric("TaskSucceeded", tasks), 0, 12),
        widget("Tasks failed / retried", app_metric("TaskFailed", tasks) + app_metric("TaskRetried", tasks), 12, 12),
        widget("Task duration p95 (ms)", app_metric("TaskDuration", tasks), 0, 18, "p95"),
        widget(
            "Emails sent, cold starts",
            [
                ["Bookshelf", "EmailsSent", "service", settings.app_name, "stage", settings.stage],
                *[
                    ["Bookshelf", "ColdStart", "service", settings.app_name, "stage", settings.stage, "function", f]
                    for f in FUNCTIONS
                ],
            ],
            12,
            18,
        ),
        widget("Lambda errors", lam("Errors"), 0, 24),
        widget("Lambda throttles", lam("Throttles"), 12, 24),
        widget("Lambda concurrent executions", lam("ConcurrentExecutions"), 0, 30, "Maximum"),
        widget("Lambda duration p95 (ms)", lam("Duration"), 12, 30, "p95"),
    ]
    return {"widgets": widgets}

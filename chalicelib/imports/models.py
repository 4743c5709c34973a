"""Import records and their report pages, declared with PynamoDB."""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chalicelib.platform.dynamodb import TableMeta, utcnow


class ImportItem(Model):
    """An import (`id` = the import id) or one page of its report (`id` = `<import id>#<page>`).

    The report is split in pages of REPORT_PAGE outcomes so that no item nears DynamoDB's
    400 KB, whatever each outcome holds (errors, a presigned upload form).
    """

    class Meta(TableMeta):
        table_setting = "imports_table"

    id = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)  # running | finished
    total = NumberAttribute(null=True)
    invalid = NumberAttribute(null=True)
    created = NumberAttribute(null=True)
    failed = NumberAttribute(null=True)
    pages = NumberAttribute(null=True)
    report_writes = NumberAttribute(null=True)  # runs of the callback that wrote the report (1)
    outcomes = JSONAttribute(null=True)  # on a report page
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    finished_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

"""Body of the subscription route (`POST /authors/{name}/subscribers`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from chalicelib.platform.schemas import StrictModel
from chalicelib.platform.validation import MAX_EMAIL, mail_address

# Not pydantic's EmailStr: it accepts addresses no mail server takes (a non-ASCII local part)
# and keeps a domain in Unicode, which cannot go into a `To:` header as it is.
MailAddress = Annotated[str, StringConstraints(max_length=MAX_EMAIL), AfterValidator(mail_address)]


class SubscriberCreate(StrictModel):
    """Body of `POST /authors/{name}/subscribers`."""

    email: MailAddress

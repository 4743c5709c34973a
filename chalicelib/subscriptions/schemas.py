"""Body of the subscription route (`POST /authors/{name}/subscribers`)."""

from __future__ import annotations

from pydantic import EmailStr

from chalicelib.platform.schemas import StrictModel


class SubscriberCreate(StrictModel):
    """Body of `POST /authors/{name}/subscribers`."""

    email: EmailStr

"""Each answer is described twice: a TypedDict the service builds (checked by mypy) and the
pydantic model of `api/responses.py` that `GET /openapi.json` publishes. Both must name the
same keys, nested shapes included, so neither can change without the other.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, get_args, get_type_hints, is_typeddict

import pytest
from pydantic import BaseModel

from chalicelib.api import responses
from chalicelib.books import answers as books
from chalicelib.ops import task_answers as tasks
from chalicelib.subscriptions import answers as subscriptions

pytestmark = pytest.mark.unit

ROOTS: list[tuple[Any, type[BaseModel]]] = [
    (books.BookAccepted, responses.BookAccepted),
    (books.BookPage, responses.BookPage),
    (subscriptions.Subscription, responses.Subscription),
    (subscriptions.SubscriberPage, responses.SubscriberPage),
    (tasks.TaskPage, responses.TaskPage),
]


def _nested(annotation: Any, wanted: Any) -> list[Any]:
    """The classes `wanted` accepts inside an annotation (`list[X]`, `dict[str, X]`, `X | None`)."""
    if isinstance(annotation, type) and wanted(annotation):
        return [annotation]
    return [found for arg in get_args(annotation) for found in _nested(arg, wanted)]


def _is_model(cls: type) -> bool:
    return issubclass(cls, BaseModel)


def _drift(shape: Any, model: type[BaseModel], seen: set[str]) -> list[str]:
    """How a TypedDict and a response model (and the shapes nested in both) differ; [] when alike."""
    name = model.__name__
    seen.add(name)
    if shape.__name__ != name:
        return [f"{shape.__name__} is paired with the model {name}"]
    keys = shape.__required_keys__ | shape.__optional_keys__
    fields = {field.alias or key: key for key, field in model.model_fields.items()}
    problems = [f"{name}: {key!r} only in the TypedDict" for key in sorted(keys - set(fields))]
    problems += [f"{name}: {key!r} only in the model" for key in sorted(set(fields) - keys)]
    hints = get_type_hints(shape)
    for key in sorted(keys & set(fields)):
        inner = _nested(hints[key], is_typeddict)
        inner_models = _nested(model.model_fields[fields[key]].annotation, _is_model)
        if [s.__name__ for s in inner] != [m.__name__ for m in inner_models]:
            problems.append(f"{name}.{key}: {inner} against {inner_models}")
            continue
        for pair in zip(inner, inner_models, strict=True):
            problems += _drift(*pair, seen)
    return problems


def test_each_answer_type_names_the_keys_of_its_response_model() -> None:
    seen: set[str] = set()
    problems = [problem for shape, model in ROOTS for problem in _drift(shape, model, seen)]
    assert problems == []
    assert seen == {
        *("BookAccepted", "Book", "Cover", "Thumbnail", "CoverUpload", "UploadForm", "BookPage"),
        *("Subscription", "Subscriber", "SubscriberPage", "TaskPage", "TaskRecord"),
    }, "a shape is no longer compared (typed as a plain dict on both sides?)"


class Thumbnail(TypedDict):
    key: str
    url: str
    size: NotRequired[int]


class Shelf(TypedDict):
    thumbnail: Thumbnail


class Published:
    """A response model named as the TypedDict above, with a key of its own."""

    class Shelf(responses.Shape):
        thumbnail: responses.Thumbnail
        label: str


def test_a_key_on_one_side_only_is_found_at_any_depth() -> None:
    assert _drift(Thumbnail, responses.Thumbnail, set()) == ["Thumbnail: 'size' only in the TypedDict"]
    assert _drift(Shelf, Published.Shelf, set()) == [
        "Shelf: 'label' only in the model",
        "Thumbnail: 'size' only in the TypedDict",
    ]

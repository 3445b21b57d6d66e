"""manage.py assistant_eval (PROTOCOL.md §5) on a tiny BEIR folder, through the builtin provider."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.conversations.models import Conversation, Message
from apps.customers.models import Customer

CORPUS = [
    {"_id": "d1", "title": "Resetting a router", "text": "Hold the reset button on the back of the router "
     "for ten seconds until the lights blink. The router restarts with its factory settings."},
    {"_id": "d2", "title": "Baking sourdough bread", "text": "Feed the starter the night before. Mix flour, "
     "water and salt, let the dough rise, then bake the sourdough loaf in a hot oven for forty minutes."},
    {"_id": "d3", "title": "Changing a bicycle tyre", "text": "Remove the wheel and lever the tyre off the "
     "rim. Replace the inner tube, then pump the tyre up to the pressure printed on its wall."},
]
QUERIES = [
    {"_id": "q1", "text": "How do I factory reset my router?"},
    {"_id": "q2", "text": "How long do I bake sourdough bread?"},
    {"_id": "q3", "text": "How do I replace the inner tube of a bicycle tyre?"},
]
UNANSWERABLE = [
    {"_id": "u1", "text": "Who painted the Mona Lisa?"},
    {"_id": "u2", "text": "What is the capital of Australia?"},
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in CORPUS) + "\n")
    (tmp_path / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in QUERIES) + "\n")
    qrels = "".join(f"q{i}\td{i}\t1\n" for i in (1, 2, 3))
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    (tmp_path / "unanswerable.jsonl").write_text("\n".join(json.dumps(r) for r in UNANSWERABLE) + "\n")
    return tmp_path


# Transactional: the provider searches from a worker thread, on its own database connection.
@pytest.mark.django_db(transaction=True)
def test_each_question_is_asked_in_a_fresh_conversation_and_counted(folder, settings):
    assert settings.KB_DEFAULT_SLUG != "eval-kb"  # the command answers from --kb all the same
    out = StringIO()
    call_command("assistant_eval", beir=folder, kb="eval-kb", unanswerable=folder / "unanswerable.jsonl",
                 json=True, stdout=out, stderr=StringIO())

    assert json.loads(out.getvalue()) == {"questions": 3, "cited_relevant": 1.0, "unanswerable": 2,
                                          "declined": 1.0}
    # Its customers, conversations and messages are removed afterwards.
    assert (Customer.objects.count(), Conversation.objects.count(), Message.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_a_folder_that_is_not_beir_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="is not a BEIR folder: missing corpus.jsonl"):
        call_command("assistant_eval", beir=tmp_path, kb="eval-kb", stdout=StringIO(), stderr=StringIO())

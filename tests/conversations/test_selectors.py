"""The chat socket's auth read: does the customer exist, and which conversation is open."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations.models import ConversationState
from apps.conversations.selectors import customer_open_conversation
from tests.support.factories import ConversationFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def test_an_unknown_customer_is_refused(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert customer_open_conversation(customer_id=uuid.uuid4()) == (False, None)


def test_a_customer_without_an_open_conversation_has_none():
    customer = CustomerFactory()
    ConversationFactory(customer=customer, state=ConversationState.CLOSED)
    assert customer_open_conversation(customer_id=customer.pk) == (True, None)


def test_the_newest_open_conversation_of_this_customer_in_one_query(django_assert_num_queries):
    customer, other = CustomerFactory(), CustomerFactory()
    now = timezone.now()
    older = ConversationFactory(customer=customer)
    newest = ConversationFactory(customer=customer)
    ConversationFactory(customer=customer, state=ConversationState.CLOSED)
    ConversationFactory(customer=other)  # someone else's, newer still
    type(older).objects.filter(pk=older.pk).update(created_at=now - timedelta(hours=2))
    type(newest).objects.filter(pk=newest.pk).update(created_at=now - timedelta(hours=1))
    with django_assert_num_queries(1):
        assert customer_open_conversation(customer_id=customer.pk) == (True, newest.pk)
